import test from "ava";
import { join } from "node:path";
import { writePth } from "../support/pth_writer.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { errorStats, tempDir } from "../onnx/helpers.js";
import { fixtureFloats, fixtureInput, reverseChannels, runModelFile, stageErrors, tinyStateDict, withinBounds } from "./helpers.js";

/** Keys EndoDAC has but inference never reads (every other key of tiny.pth must be consumed). */
const UNREAD_KEYS = [
  "encoder.mask_token",
  ...["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"].map((name) => `depth_head.scratch.refinenet4.resConfUnit1.${name}`),
  ...[2, 3, 4].flatMap((level) => [0, 2, 4].flatMap((layer) => ["weight", "bias"].map((name) => `depth_head.conv_depth_${level}.head.${layer}.${name}`))),
].sort();

test("endodac: every stage matches the reference (preprocessed, output_raw disparity, expected)", async (t) => {
  const { input, result, pre, raw, rawRange: range, depth } = await stageErrors(t, "endodac");
  t.deepEqual(result.preprocessed.dims, [1, 3, 420, 742]);
  t.deepEqual(result.raw.dims, [1, 1, 256, 320]);
  t.deepEqual(result.depth.dims, input.shape.slice(0, 2));
  t.true(pre.maxAbs < 5e-6);
  t.true(raw.maxAbs / range < 2e-5);
  t.true(withinBounds(depth));
});

test("endodac: convertCheckpoint(tiny.pth) matches expected.npy and reports the keys inference does not read", async (t) => {
  const output = join(tempDir(t), "endodac.onnx");
  const report = await convertCheckpoint({ model: "endodac", checkpoint: fixture("endodac", "tiny.pth"), output });
  t.deepEqual(report.files, [output, `${output}.data`]);
  const keys = [...(await tinyStateDict("endodac")).keys()];
  t.deepEqual([...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)].sort(), [...keys].sort());
  t.deepEqual(report.unusedKeys.map((u) => u.key).sort(), UNREAD_KEYS);
  const reasons = new Map(report.unusedKeys.map((u) => [u.key, u.reason]));
  t.regex(reasons.get("depth_head.conv_depth_3.head.0.weight")!, /\("disp", 2\).*only \("disp", 0\)/);
  // Every DV-LoRA tensor is folded into its MLP weight, so each is consumed.
  t.is(report.consumedKeys.filter((key) => /\.mlp\.fc[12]\.lora_[ABUV]$/.test(key)).length, 12 * 2 * 4);

  const result = await runModelFile(output, fixtureInput("endodac"));
  t.deepEqual(Object.keys(result), ["depth"]);
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("endodac", "expected.npy"))));
});

test("endodac: checkpoint keys the model does not have are reported as dropped, as the wrapper's load() drops them", async (t) => {
  const tiny = await tinyStateDict("endodac");
  const extras: [string, NdArray][] = [
    ["depth_head.readout_projects.0.0.weight", { data: new Float32Array(128 * 256).fill(0.5), shape: [128, 256], dtype: "float32" }],
    ["encoder.blocks.3.residual_.conv1.weight", { data: new Float32Array(16 * 128).fill(0.5), shape: [16, 128, 1, 1], dtype: "float32" }],
    ["encoder.register_tokens", { data: new Float32Array(4 * 128).fill(0.5), shape: [1, 4, 128], dtype: "float32" }],
  ];
  const dir = tempDir(t);
  const checkpoint = join(dir, "endodac-extra.pth");
  writePth(checkpoint, [...tiny, ...extras]);

  const output = join(dir, "endodac.onnx");
  const report = await convertCheckpoint({ model: "endodac", checkpoint, output });
  const dropped = report.unusedKeys.filter((u) => /its load\(\) drops it/.test(u.reason)).map((u) => u.key);
  t.deepEqual(dropped.sort(), extras.map(([key]) => key).sort());
  t.deepEqual(report.unusedKeys.map((u) => u.key).filter((key) => !dropped.includes(key)).sort(), UNREAD_KEYS);

  const result = await runModelFile(output, fixtureInput("endodac"));
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("endodac", "expected.npy"))));
});

test('endodac: channelOrder "bgr" on the channel-reversed input reproduces expected.npy', async (t) => {
  const output = join(tempDir(t), "endodac-bgr.onnx");
  await convertCheckpoint({ model: "endodac", stateDict: await tinyStateDict("endodac"), output, channelOrder: "bgr" });
  const result = await runModelFile(output, reverseChannels(fixtureInput("endodac")));
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("endodac", "expected.npy"))));
});
