import test from "ava";
import { join } from "node:path";
import { CheckpointError } from "../../lib/errors.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";
import { tinyStateDict } from "./helpers.js";

const CHECKPOINT_ERROR = { instanceOf: CheckpointError, code: "ERR_ENDOSYNTH_CHECKPOINT" } as const;
const TABLE_KEY = "pretrained.model.blocks.0.attn.relative_position_bias_table";

function floats(shape: number[]): NdArray {
  return { data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25), shape, dtype: "float32" };
}

test("a dav1 checkpoint given as midas is named as Depth Anything before any shape check", async (t) => {
  const checkpoint = fixture("dav1", "tiny.pth");
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", checkpoint, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /looks like dav1 or dav2, not midas: it has the key pretrained\.blocks\.\d+\.attn\.qkv\.weight/);
  t.true(error.message.includes(checkpoint));
  t.is(error.file, checkpoint);
});

test("an endodac checkpoint given as midas is named as endodac", async (t) => {
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", checkpoint: fixture("endodac", "tiny.pth"), output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /looks like endodac, not midas: it has the key encoder\.blocks\.0\.mlp\.fc1\.lora_A/);
});

for (const other of ["dav1", "dav2", "endodac"] as const) {
  test(`the midas checkpoint given as ${other} is named as midas by its relative position tables`, async (t) => {
    const checkpoint = fixture("midas", "tiny.pth");
    const error = await t.throwsAsync(convertCheckpoint({ model: other, checkpoint, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
    t.regex(error.message, new RegExp(`looks like midas, not ${other}: it has the key pretrained\\.model\\.blocks\\.0\\.attn\\.relative_position_bias_table`));
    t.regex(error.message, /Convert it as midas/);
    t.is(error.key, TABLE_KEY);
  });
}

test("missing MiDaS keys are all named: a q bias, a LayerScale, a readout projection and a head conv", async (t) => {
  const missing = [
    "pretrained.model.blocks.4.attn.q_bias",
    "pretrained.model.blocks.17.gamma_2",
    "pretrained.act_postprocess3.0.project.0.bias",
    "scratch.output_conv.4.weight",
  ];
  const stateDict = new Map([...(await tinyStateDict("midas"))].filter(([key]) => !missing.includes(key)));
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /4 missing key\(s\)/);
  for (const key of missing) t.true(error.message.includes(key), `${key} is named`);
  t.false(/unexpected/.test(error.message));
});

test("an absolute position embedding, which MiDaS's BEiT does not have, is an unexpected key", async (t) => {
  const stateDict = new Map(await tinyStateDict("midas"));
  stateDict.set("pretrained.model.pos_embed", floats([1, 1025, 128]));
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /1 unexpected key\(s\): pretrained\.model\.pos_embed/);
  t.is(error.key, "pretrained.model.pos_embed");
});

test("a relative position table of another window in one block is named with both shapes", async (t) => {
  const stateDict = new Map(await tinyStateDict("midas"));
  // A 24x24 window (384 px BEiT): (2*24 - 1)^2 + 3 rows.
  stateDict.set("pretrained.model.blocks.9.attn.relative_position_bias_table", floats([47 * 47 + 3, 2]));
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /pretrained\.model\.blocks\.9\.attn\.relative_position_bias_table has shape \(2212, 2\) but the model needs \(3972, 2\)/);
  t.is(error.key, "pretrained.model.blocks.9.attn.relative_position_bias_table");
});

test("a relative position table that no square window has is refused with its row count", async (t) => {
  const stateDict = new Map(await tinyStateDict("midas"));
  stateDict.set(TABLE_KEY, floats([4000, 2]));
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /relative_position_bias_table has 4000 rows, not \(2w - 1\)\^2 \+ 3 for a square attention window/);
  t.is(error.key, TABLE_KEY);
});

test("a readout projection that ignores the class token (dim → dim instead of 2 dim → dim) is named with both shapes", async (t) => {
  const stateDict = new Map(await tinyStateDict("midas"));
  stateDict.set("pretrained.act_postprocess1.0.project.0.weight", floats([128, 128]));
  const error = await t.throwsAsync(convertCheckpoint({ model: "midas", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /pretrained\.act_postprocess1\.0\.project\.0\.weight has shape \(128, 128\) but the model needs \(128, 256\)/);
  t.is(error.key, "pretrained.act_postprocess1.0.project.0.weight");
});
