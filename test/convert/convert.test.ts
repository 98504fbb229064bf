import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { randomStateDictFromKeys, type KeysJson } from "../support/random_state_dict.js";
import { AbortError, CheckpointError, InputError } from "../../lib/errors.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { convertCheckpoint, type ConvertOptions } from "../../lib/convert/convert.js";
import { modelSpec, recognizeArchitectures } from "../../lib/models/registry.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";
import { DEPTH_ANYTHING, tinyStateDict } from "../models/helpers.js";

/** The dav1 tiny state dict with one edit applied (a copy of the map; tensors shared). */
async function editedDav1(edit: (stateDict: Map<string, NdArray>) => void): Promise<Map<string, NdArray>> {
  const stateDict = new Map(await tinyStateDict("dav1"));
  edit(stateDict);
  return stateDict;
}

async function convertFails(t: { teardown: (f: () => void) => void }, options: Omit<ConvertOptions, "output">): Promise<{ error: unknown; dir: string }> {
  const dir = tempDir(t);
  const error = await convertCheckpoint({ ...options, output: join(dir, "model.onnx") }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, dir };
}

for (const arch of DEPTH_ANYTHING) {
  test(`${arch}: a random state dict with exactly keys_full.json's keys converts, consumes every key, loads and runs`, async (t) => {
    const keysJson = JSON.parse(readFileSync(fixture(arch, "keys_full.json"), "utf8")) as KeysJson & { num_elements: number };
    const stateDict = new Map(randomStateDictFromKeys(keysJson, 7));
    t.is(stateDict.size, keysJson.keys.length);
    const output = join(tempDir(t), `${arch}-full.onnx`);
    const report = await convertCheckpoint({ model: arch, stateDict, output });
    t.log(`${arch} full size: ${report.parameters} parameters used, ${report.nodes} nodes, converted in ${report.seconds.toFixed(1)} s`);

    const accounted = [...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)].sort();
    t.deepEqual(accounted, keysJson.keys.map((k) => k.key).sort());
    const unusedElements = report.unusedKeys.reduce((sum, u) => sum + stateDict.get(u.key)!.data.length, 0);
    t.is(report.parameters + unusedElements, keysJson.num_elements);
    t.is(keysJson.num_elements, modelSpec(arch).parameters);

    const session = await ort.InferenceSession.create(output);
    t.teardown(() => void session.release());
    const frame = new Uint8Array(48 * 64 * 3).map((_, i) => (i * 7) % 256);
    const result = await session.run({ rgb: new ort.Tensor("uint8", frame, [48, 64, 3]) });
    t.deepEqual(result.depth.dims, [48, 64]);
    t.true((result.depth.data as Float32Array).every((v) => Number.isFinite(v) && v >= 0 && v <= 0.3));
  });
}

test("a checkpoint of another architecture is named before any shape check (EndoDAC as dav1)", async (t) => {
  const { error, dir } = await convertFails(t, { model: "dav1", checkpoint: fixture("endodac", "tiny.pth") });
  t.true(error instanceof CheckpointError);
  t.is((error as CheckpointError).code, "ERR_ENDOSYNTH_CHECKPOINT");
  t.regex((error as Error).message, /looks like endodac, not dav1: it has the key encoder\.blocks\.0\.mlp\.fc1\.lora_A/);
  t.regex((error as Error).message, /endodac\/tiny\.pth/);
  t.deepEqual(readdirSync(dir), []);
});

test("a MiDaS checkpoint given as dav2 is recognised as midas", async (t) => {
  const { error } = await convertFails(t, { model: "dav2", checkpoint: fixture("midas", "tiny.pth") });
  t.true(error instanceof CheckpointError);
  t.regex((error as Error).message, /looks like midas, not dav2: it has the key pretrained\.model\.blocks\.0\.attn\.relative_position_bias_table/);
});

test("Depth Anything v1 and v2 checkpoints cannot be told apart by their keys (both are recognised as either)", async (t) => {
  const keys = [...(await tinyStateDict("dav2")).keys()];
  t.deepEqual(recognizeArchitectures(keys).map((r) => r.name), ["dav1", "dav2"]);
});

test("a missing key is named, with nothing written", async (t) => {
  const stateDict = await editedDav1((sd) => {
    sd.delete("pretrained.blocks.3.attn.proj.bias");
    sd.delete("depth_head.scratch.output_conv1.weight");
  });
  const { error, dir } = await convertFails(t, { model: "dav1", stateDict });
  t.true(error instanceof CheckpointError);
  t.is((error as CheckpointError).key, "pretrained.blocks.3.attn.proj.bias");
  t.regex((error as Error).message, /2 missing key\(s\): pretrained\.blocks\.3\.attn\.proj\.bias, depth_head\.scratch\.output_conv1\.weight/);
  t.deepEqual(readdirSync(dir), []);
});

test("an unexpected key is named", async (t) => {
  const stateDict = await editedDav1((sd) => sd.set("depth_head.extra.weight", { data: new Float32Array(2), shape: [2], dtype: "float32" }));
  const { error } = await convertFails(t, { model: "dav1", stateDict });
  t.true(error instanceof CheckpointError);
  t.regex((error as Error).message, /1 unexpected key\(s\): depth_head\.extra\.weight/);
});

test("a tensor of the wrong shape is named with both shapes", async (t) => {
  const stateDict = await editedDav1((sd) => sd.set("depth_head.projects.1.bias", { data: new Float32Array(7), shape: [7], dtype: "float32" }));
  const { error } = await convertFails(t, { model: "dav1", stateDict });
  t.true(error instanceof CheckpointError);
  t.is((error as CheckpointError).key, "depth_head.projects.1.bias");
  t.regex((error as Error).message, /depth_head\.projects\.1\.bias has shape \(7,\) but the model needs \(24,\)/);
});

test("a tensor of an integer dtype is refused", async (t) => {
  const stateDict = await editedDav1((sd) => sd.set("pretrained.norm.bias", { data: new BigInt64Array(128), shape: [128], dtype: "int64" }));
  const { error } = await convertFails(t, { model: "dav1", stateDict });
  t.true(error instanceof CheckpointError);
  t.regex((error as Error).message, /pretrained\.norm\.bias has dtype int64 but the model needs floating-point weights/);
});

test("a state dict without the keys that define the encoder's size says which", async (t) => {
  const stateDict = await editedDav1((sd) => sd.delete("pretrained.cls_token"));
  const { error } = await convertFails(t, { model: "dav1", stateDict });
  t.true(error instanceof CheckpointError);
  t.regex((error as Error).message, /pretrained\.cls_token should have rank 3 \(found no such key\)/);
});

test("a missing checkpoint file is a CheckpointError naming the path", async (t) => {
  const path = join(tempDir(t), "nowhere", "dav1-f.pth");
  const { error } = await convertFails(t, { model: "dav1", checkpoint: path });
  t.true(error instanceof CheckpointError);
  t.true((error as Error).message.includes(path));
});

test("bad options are InputErrors naming the option", async (t) => {
  const stateDict = await tinyStateDict("dav1");
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model: "dav3", stateDict }, /Expected one of "dav1", "dav2", "endodac", "midas" for options\.model but received "dav3"/],
    [{ model: "dav1" }, /exactly one of options\.checkpoint and options\.stateDict/],
    [{ model: "dav1", stateDict, checkpoint: "x.pth" }, /exactly one of options\.checkpoint and options\.stateDict/],
    [{ model: "dav1", stateDict, channelOrder: "rbg" }, /Expected one of "rgb", "bgr" for options\.channelOrder but received "rbg"/],
    [{ model: "dav1", stateDict, precision: "fp8" }, /Expected one of "fp32", "fp16" for options\.precision but received "fp8"/],
    [{ model: "dav1", stateDict, threads: 2 }, /Unknown option "threads"/],
  ];
  for (const [options, message] of cases) {
    const { error } = await convertFails(t, options as unknown as ConvertOptions);
    t.true(error instanceof InputError, String(message));
    t.is((error as InputError).code, "ERR_ENDOSYNTH_INPUT");
    t.regex((error as Error).message, message);
  }
});

test("an aborted conversion throws AbortError and leaves nothing at the output", async (t) => {
  const controller = new AbortController();
  const dir = tempDir(t);
  const output = join(dir, "model.onnx");
  const converting = convertCheckpoint({
    model: "dav2",
    stateDict: await tinyStateDict("dav2"),
    output,
    signal: controller.signal,
    onProgress: (p) => p.phase === "writing weights" && controller.abort(),
  });
  await t.throwsAsync(converting, { instanceOf: AbortError });
  t.false(existsSync(output));
  t.deepEqual(readdirSync(dir), []);
});
