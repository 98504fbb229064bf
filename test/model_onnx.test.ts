import test from "ava";
import { copyFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../lib/errors.js";
import { load } from "../lib/model.js";
import { convertCheckpoint } from "../lib/convert/convert.js";
import { ndarray } from "../lib/ndarray/ndarray.js";
import { Graph } from "../lib/onnx/graph.js";
import { writeOnnx } from "../lib/onnx/writer.js";
import { fixture, temporaryDirectory } from "./support/fixtures.js";
import { BOUNDS, fixtureFloats, fixtureInput, tinyStateDict } from "./models/helpers.js";
import { errorStats } from "./onnx/helpers.js";

const FORMAT_ERROR = { instanceOf: FileFormatError, code: "ERR_ENDOSYNTH_FILE_FORMAT" } as const;
const INPUT_ERROR = { instanceOf: InputError, code: "ERR_ENDOSYNTH_INPUT" } as const;

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = temporaryDirectory("endosynth-onnx-option-");
  t.teardown(dir.cleanup);
  return dir.path;
}

/** The tiny dav1 checkpoint converted to `dir/name`. */
async function convertedDav1(dir: string, name = "dav1.onnx"): Promise<string> {
  const onnx = join(dir, name);
  await convertCheckpoint({ model: "dav1", checkpoint: fixture("dav1", "tiny.pth"), output: onnx });
  return onnx;
}

test("load from a ready ONNX file runs it without a checkpoint", async (t) => {
  const dir = scratch(t);
  const phases: string[] = [];
  const model = await load("dav1", { onnx: await convertedDav1(dir), cacheDir: dir, onProgress: (p) => phases.push(p.phase) });
  t.teardown(() => model.dispose());
  t.true(phases.includes("verifying weights"));
  t.is(model.precision, "fp32");
  t.true(errorStats((await model.infer(fixtureInput("dav1"))).data, fixtureFloats("dav1", "expected.npy")).maxAbs <= BOUNDS.maxAbs);
});

test("an fp16 ONNX file runs in fp16 and says so", async (t) => {
  const dir = scratch(t);
  const onnx = join(dir, "dav1-fp16.onnx");
  await convertCheckpoint({ model: "dav1", checkpoint: fixture("dav1", "tiny.pth"), output: onnx, precision: "fp16" });
  const model = await load("dav1", { onnx, cacheDir: dir, backend: "onnxruntime" });
  t.teardown(() => model.dispose());
  t.is(model.precision, "fp16");
  t.deepEqual((await model.infer(fixtureInput("dav1"))).shape, [540, 960]);
});

test('load("dav2", { onnx }) of a converted dav1 file names the model the file holds', async (t) => {
  const dir = scratch(t);
  const onnx = await convertedDav1(dir);
  const error = await t.throwsAsync(load("dav2", { onnx, cacheDir: dir }), INPUT_ERROR);
  t.is(error.message, `${onnx} holds the dav1 model, not dav2: load it as dav1`);
  t.is(error.file, onnx);
  t.is(error.key, "options.onnx");
});

test("load({ onnx }) of an ONNX model endosynth did not convert is refused before it runs", async (t) => {
  const dir = scratch(t);
  const onnx = join(dir, "foreign.onnx");
  const graph = new Graph("foreign");
  graph.output(graph.relu(graph.input("x", "float32", [1, 3])), "y");
  await writeOnnx(graph, onnx);
  const error = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), INPUT_ERROR);
  t.regex(error.message, /foreign\.onnx was not converted by endosynth \(its metadata names no model\)/);
  t.is(error.file, onnx);
});

test("load({ onnx }) of a file from a converter that did not record its weights asks for a new conversion", async (t) => {
  const dir = scratch(t);
  const onnx = join(dir, "old.onnx");
  const graph = new Graph("old");
  graph.output(graph.relu(graph.input("x", "float32", [1, 3])), "y");
  await writeOnnx(graph, onnx, { metadata: { model: "dav1", converter_version: "3", precision: "fp32" } });
  const error = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), INPUT_ERROR);
  t.regex(error.message, /converted by an older endosynth \(converter version 3\).*convert the checkpoint again \(endosynth convert dav1\)/);
});

test("load({ onnx }) of a file that is not an ONNX model throws FileFormatError naming it", async (t) => {
  const dir = scratch(t);
  const onnx = join(dir, "not.onnx");
  writeFileSync(onnx, "not a model");
  const error = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), FORMAT_ERROR);
  t.true(error.message.startsWith(`${onnx}: not an ONNX model`), error.message);
});

test("load({ onnx }) whose weights file is another conversion's, of the same size, is refused naming the weights file", async (t) => {
  const dir = scratch(t);
  const onnx = await convertedDav1(dir);
  const stateDict = new Map(await tinyStateDict("dav1"));
  const [key, tensor] = [...stateDict].find(([name]) => name.endsWith("attn.qkv.weight"))!;
  stateDict.set(key, ndarray(Float32Array.from(tensor.data as Float32Array, (v) => v * 2), tensor.shape));
  const other = join(dir, "other.onnx");
  await convertCheckpoint({ model: "dav1", stateDict, output: other });
  copyFileSync(`${other}.data`, `${onnx}.data`);

  const error = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), FORMAT_ERROR);
  t.is(error.message, `${onnx}.data is not the weights file ${onnx} was written with: its SHA-256 differs from the one recorded in the model. Convert the checkpoint again.`);
  t.is(error.file, `${onnx}.data`);
});

test("load({ onnx }) with a truncated or missing weights file is refused naming it", async (t) => {
  const dir = scratch(t);
  const onnx = await convertedDav1(dir);
  truncateSync(`${onnx}.data`, 1000);
  const truncated = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), FORMAT_ERROR);
  t.regex(truncated.message, /\.onnx\.data is not the weights file .* it has 1000 bytes, the model expects \d+\./);
  rmSync(`${onnx}.data`);
  const missing = await t.throwsAsync(load("dav1", { onnx, cacheDir: dir }), FORMAT_ERROR);
  t.regex(missing.message, /\.onnx\.data is not the weights file .*: it is missing\./);
});
