import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { encodeModel } from "../../lib/onnx/onnx_proto.js";
import { endosynth } from "../support/cli.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";

test("info --check-tensorrt prints one line per operator and exits 0 for a model endosynth converted", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const output = join(dir.path, "dav2.onnx");
  await convertCheckpoint({ model: "dav2", checkpoint: fixture("dav2", "tiny.pth"), output, precision: "fp16" });
  const result = await endosynth(["info", "--check-tensorrt", output]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^ {2}LayerNormalization +\d+ +FP32 +supported$/m);
  t.regex(result.stdout, /^ {2}MatMul +\d+ +FP16 +supported$/m);
  t.regex(result.stdout, /TensorRT 10's ONNX parser can import .*dav2\.onnx: \d+ operator types, all supported\n$/);
  const quiet = await endosynth(["info", "--check-tensorrt", output, "-q"]);
  t.regex(quiet.stdout, /^TensorRT 10's ONNX parser can import .*dav2\.onnx: \d+ operator types, all supported\n$/);
});

test("info --check-tensorrt --json reports an unsupported operator and exits 1", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const path = join(dir.path, "unique.onnx");
  const model = encodeModel({
    graphName: "g",
    producerName: "test",
    producerVersion: "0",
    metadata: {},
    nodes: [{ name: "u", opType: "Unique", inputs: ["x"], outputs: ["y"], attributes: {} }],
    initializers: [],
    inputs: [{ name: "x", dtype: "float32", shape: [4] }],
    outputs: [{ name: "y", dtype: "float32", shape: undefined }],
  });
  writeFileSync(path, Buffer.concat(model.chunks()));
  const result = await endosynth(["info", "--check-tensorrt", path, "--json"]);
  t.is(result.code, 1);
  const report = JSON.parse(result.stdout) as { supported: boolean; operators: { opType: string; problems: string[] }[] };
  t.false(report.supported);
  t.deepEqual(report.operators, [{ opType: "Unique", domain: "", count: 1, types: ["FP32"], supported: false, problems: ["the support matrix marks it unsupported"] }]);
});

test("info --check-tensorrt of a file that is not ONNX fails with one line naming it", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const path = join(dir.path, "notes.txt");
  writeFileSync(path, "not a model");
  const result = await endosynth(["info", "--check-tensorrt", path]);
  t.is(result.code, 1);
  t.regex(result.stderr, /notes\.txt is not an ONNX model/);
  t.is(result.stdout, "");
});
