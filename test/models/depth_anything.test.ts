import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { fixture } from "../support/fixtures.js";
import { errorStats, tempDir } from "../onnx/helpers.js";
import { BOUNDS, DEPTH_ANYTHING, fixtureFloats, fixtureInput, reverseChannels, runModelFile, stageErrors, tinyStateDict } from "./helpers.js";

for (const arch of DEPTH_ANYTHING) {
  test(`${arch}: every stage matches the reference (preprocessed, output_raw, expected)`, async (t) => {
    const { input, result, pre, raw, rawRange: range, depth } = await stageErrors(t, arch);
    t.deepEqual(result.depth.dims, input.shape.slice(0, 2));
    t.true(pre.maxAbs < 5e-6);
    t.true(raw.maxAbs / range < 2e-5);
    t.true(depth.maxAbs <= BOUNDS.maxAbs && depth.meanAbs <= BOUNDS.meanAbs && depth.maxRel <= BOUNDS.maxRel);
  });

  test(`${arch}: convertCheckpoint(tiny.pth) gives a model matching expected.npy, every key accounted for`, async (t) => {
    const output = join(tempDir(t), `${arch}.onnx`);
    const progress: string[] = [];
    const report = await convertCheckpoint({ model: arch, checkpoint: fixture(arch, "tiny.pth"), output, onProgress: (p) => progress.push(p.phase) });
    t.deepEqual(report.files, [output, `${output}.data`]);
    t.deepEqual(readdirSync(join(output, "..")).sort(), [`${arch}.onnx`, `${arch}.onnx.data`]);
    const keys = [...(await tinyStateDict(arch)).keys()];
    t.deepEqual([...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)].sort(), [...keys].sort());
    t.deepEqual(report.unusedKeys.map((u) => u.key).sort(), [
      "depth_head.scratch.refinenet4.resConfUnit1.conv1.bias",
      "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight",
      "depth_head.scratch.refinenet4.resConfUnit1.conv2.bias",
      "depth_head.scratch.refinenet4.resConfUnit1.conv2.weight",
      "pretrained.mask_token",
    ]);
    t.true(progress.includes("reading checkpoint") && progress.includes("building graph") && progress.includes("writing weights"));

    const result = await runModelFile(output, fixtureInput(arch));
    t.deepEqual(Object.keys(result), ["depth"]);
    const stats = errorStats(result.depth.data as Float32Array, fixtureFloats(arch, "expected.npy"));
    t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.meanAbs <= BOUNDS.meanAbs && stats.maxRel <= BOUNDS.maxRel);
  });

  test(`${arch}: channelOrder "bgr" on the channel-reversed input reproduces expected.npy`, async (t) => {
    const output = join(tempDir(t), `${arch}-bgr.onnx`);
    await convertCheckpoint({ model: arch, stateDict: await tinyStateDict(arch), output, channelOrder: "bgr" });
    const reversed = await runModelFile(output, reverseChannels(fixtureInput(arch)));
    const stats = errorStats(reversed.depth.data as Float32Array, fixtureFloats(arch, "expected.npy"));
    t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.meanAbs <= BOUNDS.meanAbs && stats.maxRel <= BOUNDS.maxRel);
    // The same frame without reversal is a different image to the network: far off.
    const unreversed = await runModelFile(output, fixtureInput(arch));
    t.true(errorStats(unreversed.depth.data as Float32Array, fixtureFloats(arch, "expected.npy")).maxRel > 1e-2);
  });
}
