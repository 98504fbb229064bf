/**
 * `endosynth export triton`: the repository's configs conform to Triton's model_config.proto
 * (parsed as text format and checked field by field against the schema table), declare the ONNX
 * graph's real tensors, and the exported graphs compute the reference depth. Triton itself cannot
 * run here.
 */
import test from "ava";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportTriton } from "../../lib/export/triton.js";
import { InputError } from "../../lib/errors.js";
import { load } from "../../lib/model.js";
import { MODEL_NAMES } from "../../lib/models/registry.js";
import { ELEM_TYPE, readOnnx } from "../onnx/onnx_reader.js";
import { errorStats } from "../onnx/helpers.js";
import { BOUNDS, fixtureFloats, fixtureInput } from "../models/helpers.js";
import { endosynth } from "../support/cli.js";
import { fixture, testFolder } from "../support/fixtures.js";
import { checkMessage } from "./model_config_schema.js";
import { fieldsNamed, parseTextFormat, type TextField, type TextValue } from "./text_format.js";

const TRITON_TYPE: Record<number, string> = { [ELEM_TYPE.uint8]: "TYPE_UINT8", [ELEM_TYPE.float32]: "TYPE_FP32" };

function scalar(fields: readonly TextField[], name: string): string | number | undefined {
  const [value] = fieldsNamed(fields, name);
  return value === undefined || value.kind === "message" ? undefined : value.value;
}

function messages(fields: readonly TextField[], name: string): TextField[][] {
  return fieldsNamed(fields, name).flatMap((value: TextValue) => (value.kind === "message" ? [value.fields] : []));
}

test("every model: configs that conform to model_config.proto, declare the graph's tensors, and graphs that compute the reference depth", async (t) => {
  const dir = testFolder(t);
  const output = join(dir, "repository");
  const checkpoints = Object.fromEntries(MODEL_NAMES.map((model) => [model, fixture(model, "tiny.pth")]));
  const result = await exportTriton({ models: MODEL_NAMES, output, checkpoints });
  t.deepEqual(readdirSync(output).sort(), MODEL_NAMES.flatMap((model) => [model, `${model}_trt`]).sort());
  t.deepEqual(readdirSync(dir), ["repository"], "nothing temporary is left beside it");
  t.is(result.folders.length, 8);

  for (const model of MODEL_NAMES) {
    const onnx = readOnnx(join(output, model, "1", "model.onnx"));
    for (const name of [model, `${model}_trt`]) {
      const config = parseTextFormat(readFileSync(join(output, name, "config.pbtxt"), "utf8"));
      t.deepEqual(checkMessage("ModelConfig", config), [], `${name}/config.pbtxt conforms to ModelConfig`);
      t.is(scalar(config, "name"), name);
      t.is(scalar(config, "platform"), "onnxruntime_onnx");
      t.is(scalar(config, "max_batch_size"), 0);
      const [input] = messages(config, "input");
      const [output_] = messages(config, "output");
      t.is(scalar(input, "name"), onnx.inputs[0].name);
      t.is(scalar(input, "data_type"), TRITON_TYPE[onnx.inputs[0].elemType]);
      t.deepEqual(fieldsNamed(input, "dims").map((dim) => (dim.kind === "number" ? dim.value : NaN)), [-1, -1, -1]);
      t.is(scalar(output_, "name"), onnx.outputs[0].name);
      t.is(scalar(output_, "data_type"), TRITON_TYPE[onnx.outputs[0].elemType]);
      t.deepEqual(fieldsNamed(output_, "dims").map((dim) => (dim.kind === "number" ? dim.value : NaN)), [-1, -1]);
      const [group] = messages(config, "instance_group");
      t.is(scalar(group, "kind"), "KIND_GPU");
      t.is(scalar(group, "count"), 1);
      const accelerators = messages(config, "optimization").flatMap((policy) => messages(policy, "execution_accelerators")).flatMap((list) => messages(list, "gpu_execution_accelerator"));
      if (name.endsWith("_trt")) {
        t.is(accelerators.length, 1);
        t.is(scalar(accelerators[0], "name"), "tensorrt");
        const parameters = Object.fromEntries(messages(accelerators[0], "parameters").map((entry) => [scalar(entry, "key"), scalar(entry, "value")]));
        t.is(parameters.precision_mode, "FP16");
      } else t.is(accelerators.length, 0);
    }
    t.deepEqual(readdirSync(join(output, `${model}_trt`, "1")).sort(), readdirSync(join(output, model, "1")).sort(), "each folder holds its own copy");

    const exported = await load(model, { onnx: join(output, model, "1", "model.onnx"), backend: "onnxruntime" });
    try {
      const stats = errorStats((await exported.infer(fixtureInput(model))).data, fixtureFloats(model, "expected.npy"));
      t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.maxRel <= BOUNDS.maxRel, `${model}: ${JSON.stringify(stats)}`);
    } finally {
      await exported.dispose();
    }
  }
});

test("the schema check refuses what Triton would: unknown fields, quoted numbers, fractional dims, unknown enum values", (t) => {
  const bad = parseTextFormat('name: "m"\nmax_batch_size: "0"\nbatching: true\ninput [ { name: "x" data_type: TYPE_UINT9 dims: [ -1.5 ] } ]');
  t.deepEqual(checkMessage("ModelConfig", bad), [
    "ModelConfig.max_batch_size: expected an integer",
    "ModelConfig.batching: no such field in ModelConfig",
    "ModelConfig.input.data_type: expected one of DataType (TYPE_INVALID, TYPE_BOOL, TYPE_UINT8, TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, TYPE_INT8, TYPE_INT16, TYPE_INT32, TYPE_INT64, TYPE_FP16, TYPE_FP32, TYPE_FP64, TYPE_STRING, TYPE_BF16)",
    "ModelConfig.input.dims: expected an integer",
  ]);
});

test("export triton --cpu --precision fp16 --instances 2 --json: CPU instances, no TensorRT variant, an fp16 graph", async (t) => {
  const dir = testFolder(t);
  const output = join(dir, "repository");
  const result = await endosynth(["export", "triton", "dav1", output, "-c", fixture("dav1", "tiny.pth"), "--cpu", "--precision", "fp16", "--instances", "2", "--json", "-q"]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { output: string; precision: string; folders: { name: string; accelerator: string }[] };
  t.like(summary, { output, precision: "fp16" });
  t.deepEqual(summary.folders.map((folder) => [folder.name, folder.accelerator]), [["dav1", "onnxruntime"]]);
  t.deepEqual(readdirSync(output), ["dav1"]);
  const config = parseTextFormat(readFileSync(join(output, "dav1", "config.pbtxt"), "utf8"));
  t.deepEqual(checkMessage("ModelConfig", config), []);
  const [group] = messages(config, "instance_group");
  t.deepEqual([scalar(group, "kind"), scalar(group, "count")], ["KIND_CPU", 2]);
  t.true(readOnnx(join(output, "dav1", "1", "model.onnx")).initializers.some((tensor) => tensor.elemType === ELEM_TYPE.float16));
});

test("an existing repository is kept without --overwrite and replaced with it", async (t) => {
  const dir = testFolder(t);
  const output = join(dir, "repository");
  mkdirSync(output);
  writeFileSync(join(output, "keep.txt"), "mine");
  const refused = await endosynth(["export", "triton", "dav2", output, "-c", fixture("dav2", "tiny.pth")]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /repository already exists: pass --overwrite/);
  t.is(readFileSync(join(output, "keep.txt"), "utf8"), "mine");
  const replaced = await endosynth(["export", "triton", "dav2", output, "-c", fixture("dav2", "tiny.pth"), "--overwrite", "-q"]);
  t.is(replaced.code, 0, replaced.stderr);
  t.false(existsSync(join(output, "keep.txt")));
  t.deepEqual(readdirSync(output).sort(), ["dav2", "dav2_trt"]);
  t.deepEqual(readdirSync(dir), ["repository"]);
});

test("a model that does not exist, or a checkpoint for a model not exported, is refused before any work", async (t) => {
  const dir = testFolder(t);
  const unknown = await endosynth(["export", "triton", "dav3", join(dir, "repository")]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /unknown model dav3 \(choose from dav1, dav2, endodac, midas\)/);
  const stray = await endosynth(["export", "triton", "dav1", "dav2", join(dir, "repository"), "-c", `midas=${fixture("midas", "tiny.pth")}`]);
  t.is(stray.code, 1);
  t.regex(stray.stderr, /midas is not one of the models exported \(dav1, dav2\)/);
  await t.throwsAsync(exportTriton({ models: [], output: join(dir, "repository") }), { instanceOf: InputError, message: /options\.models/ });
  t.deepEqual(readdirSync(dir), []);
});
