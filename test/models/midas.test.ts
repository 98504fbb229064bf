import test from "ava";
import { join } from "node:path";
import { writePth } from "../support/pth_writer.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { errorStats, tempDir } from "../onnx/helpers.js";
import { fixtureFloats, fixtureInput, reverseChannels, runModelFile, stageErrors, tinyStateDict, withinBounds } from "./helpers.js";

/** Keys MiDaS has but inference never reads (every other key of tiny.pth must be consumed). */
const UNREAD_KEYS = [
  ...["fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"].map((name) => `pretrained.model.${name}`),
  ...["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"].map((name) => `scratch.refinenet4.resConfUnit1.${name}`),
].sort();

test("midas: every stage matches the reference (preprocessed, output_raw disparity, expected)", async (t) => {
  const { input, result, pre, raw, rawRange: range, depth } = await stageErrors(t, "midas");
  t.deepEqual(result.preprocessed.dims, [1, 3, 420, 742]);
  // The 420x742 input floors to 26x46 patches: the network sees 416x736 and outputs at that size.
  t.deepEqual(result.raw.dims, [1, 416, 736]);
  t.deepEqual(result.depth.dims, input.shape.slice(0, 2));
  t.true(pre.maxAbs < 2e-6);
  // The README's float32-vs-float64 noise on output_raw is 2e-6 of its range.
  t.true(raw.maxAbs / range < 1e-5);
  t.true(withinBounds(depth));
});

test("midas: convertCheckpoint(tiny.pth) matches expected.npy and reports the keys inference does not read", async (t) => {
  const output = join(tempDir(t), "midas.onnx");
  const report = await convertCheckpoint({ model: "midas", checkpoint: fixture("midas", "tiny.pth"), output });
  t.deepEqual(report.files, [output, `${output}.data`]);
  const keys = [...(await tinyStateDict("midas")).keys()];
  t.deepEqual([...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)].sort(), [...keys].sort());
  t.deepEqual(report.unusedKeys.map((u) => u.key).sort(), UNREAD_KEYS);
  const reasons = new Map(report.unusedKeys.map((u) => [u.key, u.reason]));
  t.regex(reasons.get("pretrained.model.head.weight")!, /classifier/);
  // Every block's relative position table and both readout-projection weights are consumed.
  t.is(report.consumedKeys.filter((key) => key.endsWith(".attn.relative_position_bias_table")).length, 24);
  t.is(report.consumedKeys.filter((key) => /^pretrained\.act_postprocess\d\.0\.project\.0\./.test(key)).length, 8);

  const result = await runModelFile(output, fixtureInput("midas"));
  t.deepEqual(Object.keys(result), ["depth"]);
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("midas", "expected.npy"))));
});

test("midas: stored relative_position_index buffers are accepted and reported as unused (the wrapper deletes them)", async (t) => {
  const tiny = await tinyStateDict("midas");
  // What timm 0.6.12 stores for the 32x32 pretraining window: int64 [1025, 1025] per block.
  const storedIndex: NdArray = { data: new BigInt64Array(1025 * 1025).fill(7n), shape: [1025, 1025], dtype: "int64" };
  const indexKeys = [0, 11, 23].map((block) => `pretrained.model.blocks.${block}.attn.relative_position_index`);
  const dir = tempDir(t);
  const checkpoint = join(dir, "midas-with-index.pth");
  writePth(checkpoint, [...tiny, ...indexKeys.map((key): [string, NdArray] => [key, storedIndex])]);

  const output = join(dir, "midas.onnx");
  const report = await convertCheckpoint({ model: "midas", checkpoint, output });
  const reasons = new Map(report.unusedKeys.map((u) => [u.key, u.reason]));
  for (const key of indexKeys) t.regex(reasons.get(key) ?? "", /regenerates it for the 26x46 patch grid/, key);
  t.deepEqual(report.unusedKeys.map((u) => u.key).filter((key) => !indexKeys.includes(key)).sort(), UNREAD_KEYS);

  const result = await runModelFile(output, fixtureInput("midas"));
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("midas", "expected.npy"))));
});

test('midas: channelOrder "bgr" on the channel-reversed input reproduces expected.npy', async (t) => {
  const output = join(tempDir(t), "midas-bgr.onnx");
  await convertCheckpoint({ model: "midas", stateDict: await tinyStateDict("midas"), output, channelOrder: "bgr" });
  const result = await runModelFile(output, reverseChannels(fixtureInput("midas")));
  t.true(withinBounds(errorStats(result.depth.data as Float32Array, fixtureFloats("midas", "expected.npy"))));
});
