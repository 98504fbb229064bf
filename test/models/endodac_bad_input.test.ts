import test from "ava";
import { join } from "node:path";
import { CheckpointError } from "../../lib/errors.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";
import { tinyStateDict } from "./helpers.js";

const CHECKPOINT_ERROR = { instanceOf: CheckpointError, code: "ERR_ENDOSYNTH_CHECKPOINT" } as const;

for (const other of ["dav1", "dav2"] as const) {
  test(`a ${other} checkpoint given as endodac is named as Depth Anything before any shape check`, async (t) => {
    const checkpoint = fixture(other, "tiny.pth");
    const error = await t.throwsAsync(convertCheckpoint({ model: "endodac", checkpoint, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
    t.regex(error.message, /looks like dav1 or dav2, not endodac/);
    t.regex(error.message, /it has the key pretrained\.blocks\.\d+\.attn\.qkv\.weight/);
    t.true(error.message.includes(checkpoint));
    t.is(error.file, checkpoint);
  });

  test(`the endodac checkpoint given as ${other} is named as endodac`, async (t) => {
    const checkpoint = fixture("endodac", "tiny.pth");
    const error = await t.throwsAsync(convertCheckpoint({ model: other, checkpoint, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
    t.regex(error.message, new RegExp(`looks like endodac, not ${other}: it has the key encoder\\.blocks\\.0\\.mlp\\.fc1\\.lora_A`));
    t.regex(error.message, /endodac-f\.pth|Convert it as endodac/);
    t.is(error.key, "encoder.blocks.0.mlp.fc1.lora_A");
  });
}

test("missing EndoDAC keys are all named, including a DV-LoRA vector, a residual norm and an unread decoder output", async (t) => {
  const missing = [
    "encoder.blocks.3.mlp.fc2.lora_V",
    "encoder.blocks.5.residual_.norm3.bias",
    "depth_head.conv_depth_1.head.4.weight",
    "depth_head.conv_depth_3.head.0.weight",
  ];
  const stateDict = new Map([...(await tinyStateDict("endodac"))].filter(([key]) => !missing.includes(key)));
  const error = await t.throwsAsync(convertCheckpoint({ model: "endodac", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /4 missing key\(s\)/);
  for (const key of missing) t.true(error.message.includes(key), `${key} is named`);
  t.false(/unexpected/.test(error.message));
});

test("a DV-LoRA tensor of another rank is named with both shapes", async (t) => {
  const stateDict = new Map(await tinyStateDict("endodac"));
  const rank8: NdArray = { data: new Float32Array(8 * 128), shape: [8, 128], dtype: "float32" };
  stateDict.set("encoder.blocks.7.mlp.fc1.lora_A", rank8);
  const error = await t.throwsAsync(convertCheckpoint({ model: "endodac", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /encoder\.blocks\.7\.mlp\.fc1\.lora_A has shape \(8, 128\) but the model needs \(4, 128\)/);
  t.is(error.key, "encoder.blocks.7.mlp.fc1.lora_A");
});

test("a residual bottleneck of the wrong width is named with both shapes", async (t) => {
  const stateDict = new Map(await tinyStateDict("endodac"));
  stateDict.set("encoder.blocks.8.residual_.conv2.weight", { data: new Float32Array(32 * 32 * 9), shape: [32, 32, 3, 3], dtype: "float32" });
  const error = await t.throwsAsync(convertCheckpoint({ model: "endodac", stateDict, output: join(tempDir(t), "x.onnx") }), CHECKPOINT_ERROR);
  t.regex(error.message, /encoder\.blocks\.8\.residual_\.conv2\.weight has shape \(32, 32, 3, 3\) but the model needs \(16, 16, 3, 3\)/);
});
