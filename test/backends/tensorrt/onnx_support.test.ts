/**
 * TensorRT readiness without a GPU: every graph endosynth exports (four models, fp32 and fp16)
 * passes TensorRT 10's ONNX support matrix, op by op and type by type; and graphs that break the
 * matrix are refused with the reason. Node counts and tensor types are cross-checked with the
 * test's own ONNX reader, not taken from the checker.
 */
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkTensorRTSupport } from "../../../lib/backends/tensorrt/onnx_support.js";
import { SUPPORTED_OPERATORS, TENSORRT_MATRIX_SOURCE } from "../../../lib/backends/tensorrt/onnx_operators.js";
import { convertCheckpoint } from "../../../lib/convert/convert.js";
import { FileFormatError } from "../../../lib/errors.js";
import { MODEL_NAMES } from "../../../lib/models/registry.js";
import { encodeModel, type ModelSpec, type NodeSpec } from "../../../lib/onnx/onnx_proto.js";
import { ProtoWriter } from "../../../lib/onnx/protobuf.js";
import { fixture, temporaryDirectory } from "../../support/fixtures.js";
import { ELEM_TYPE, elementTypes, readOnnx } from "../../onnx/onnx_reader.js";

const MATRIX_NAME: Record<number, string> = { [ELEM_TYPE.float32]: "FP32", [ELEM_TYPE.float16]: "FP16", [ELEM_TYPE.int64]: "INT64", [ELEM_TYPE.int32]: "INT32", [ELEM_TYPE.uint8]: "UINT8", [ELEM_TYPE.bool]: "BOOL" };

for (const model of MODEL_NAMES) {
  for (const precision of ["fp32", "fp16"] as const) {
    test(`${model} ${precision}: every operator, type and restriction is in TensorRT 10's ONNX support matrix`, async (t) => {
      const dir = temporaryDirectory();
      t.teardown(dir.cleanup);
      const output = join(dir.path, "model.onnx");
      await convertCheckpoint({ model, checkpoint: fixture(model, "tiny.pth"), output, precision });
      const report = checkTensorRTSupport(output);
      t.true(report.supported, JSON.stringify(report.operators.filter((verdict) => !verdict.supported)));
      t.is(report.opset, 17);
      t.is(report.matrix.commit, TENSORRT_MATRIX_SOURCE.commit);

      const read = readOnnx(output);
      const counts = new Map<string, number>();
      for (const node of read.nodes) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
      t.deepEqual(new Map(report.operators.map((verdict) => [verdict.opType, verdict.count])), counts, "one verdict per operator, with its node count");
      const types = elementTypes(read);
      for (const verdict of report.operators) {
        t.truthy(SUPPORTED_OPERATORS[verdict.opType], verdict.opType);
        const expected = new Set(read.nodes.filter((node) => node.opType === verdict.opType).map((node) => MATRIX_NAME[types.get(node.inputs[0])!]));
        t.deepEqual(new Set(verdict.types), expected, `${verdict.opType}: the types of its data inputs`);
      }
      const heavy = report.operators.filter((verdict) => ["MatMul", "Gemm", "Conv"].includes(verdict.opType));
      t.is(heavy.length, 3);
      for (const verdict of heavy) t.deepEqual(verdict.types, [precision === "fp16" ? "FP16" : "FP32"], `${verdict.opType} runs in ${precision}`);
    });
  }
}

/** A one-frame float graph around the given nodes, written to a file; `extra` bytes are appended to the model message. */
function writeGraph(t: { teardown(fn: () => void): void }, nodes: NodeSpec[], options: { inputType?: "float32" | "uint8"; extra?: ProtoWriter } = {}): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const spec: ModelSpec = {
    graphName: "g",
    producerName: "test",
    producerVersion: "0",
    metadata: {},
    nodes,
    initializers: [{ name: "axes", dtype: "int64", shape: [1], data: { kind: "embedded", bytes: new Uint8Array(8) } }],
    inputs: [{ name: "x", dtype: options.inputType ?? "float32", shape: [1, 4] }],
    outputs: [{ name: "y", dtype: "float32", shape: undefined }],
  };
  const path = join(dir.path, "model.onnx");
  writeFileSync(path, Buffer.concat([...encodeModel(spec).chunks(), ...(options.extra?.chunks() ?? [])]));
  return path;
}

const node = (opType: string, inputs: string[], attributes: NodeSpec["attributes"] = {}, outputs = ["y"]): NodeSpec => ({ name: opType, opType, inputs, outputs, attributes });

test("operators the matrix marks unsupported or does not list are named", (t) => {
  const report = checkTensorRTSupport(writeGraph(t, [node("Unique", ["x"], {}, ["u"]), node("Unique", ["u"], {}, ["v"]), node("NotAnOnnxOp", ["v"])]));
  t.false(report.supported);
  t.deepEqual(report.operators, [
    { opType: "Unique", domain: "", count: 2, types: ["FP32"], supported: false, problems: ["the support matrix marks it unsupported"] },
    { opType: "NotAnOnnxOp", domain: "", count: 1, types: ["FP32"], supported: false, problems: ["it is not in the support matrix: TensorRT's ONNX parser does not import it"] },
  ]);
});

test("a cubic Resize and an antialiased one break the matrix's restrictions", (t) => {
  const report = checkTensorRTSupport(writeGraph(t, [node("Resize", ["x", "", "", "axes"], { mode: { type: "string", value: "cubic" }, antialias: { type: "int", value: 1 } })]));
  t.false(report.supported);
  t.deepEqual(report.operators[0].problems, ['mode "cubic" (supported: nearest, linear)', "antialias is not supported"]);
});

test("Slice axes computed at run time instead of an initializer are refused; from an initializer they pass", (t) => {
  const computed = checkTensorRTSupport(writeGraph(t, [node("Shape", ["x"], {}, ["s"]), node("Slice", ["x", "axes", "axes", "s"])]));
  t.deepEqual(computed.operators.find((verdict) => verdict.opType === "Slice")?.problems, ["input 3 (s) must be an initializer or a constant"]);
  t.true(checkTensorRTSupport(writeGraph(t, [node("Slice", ["x", "axes", "axes", "axes"])])).supported);
});

test("UINT8 inside the network and a cast to double are refused; UINT8 cast at the input passes", (t) => {
  const inside = checkTensorRTSupport(writeGraph(t, [node("Cast", ["x"], { to: { type: "int", value: 2 } }, ["u"]), node("Relu", ["u"])]));
  t.deepEqual(inside.operators.map((verdict) => [verdict.opType, verdict.problems]), [
    ["Cast", []],
    ["Relu", ["UINT8 tensors are not supported (supported: FP32, FP16, BF16, INT32, INT64)", "UINT8 is supported only as a network input or output"]],
  ]);
  const double = checkTensorRTSupport(writeGraph(t, [node("Cast", ["x"], { to: { type: "int", value: 11 } })]));
  t.deepEqual(double.operators[0].problems, ["casting to DOUBLE is not supported"]);
  t.true(checkTensorRTSupport(writeGraph(t, [node("Cast", ["x"], { to: { type: "int", value: 1 } })], { inputType: "uint8" })).supported);
});

test("an opset newer than TensorRT 10's range is reported", (t) => {
  const extra = new ProtoWriter().message(8, new ProtoWriter().string(1, "").varint(2, 21));
  const report = checkTensorRTSupport(writeGraph(t, [node("Relu", ["x"])], { extra }));
  t.is(report.opset, 21);
  t.false(report.supported);
  t.deepEqual(report.problems, ["opset 21 is outside the range TensorRT 10 imports (9 to 20)"]);
});

test("a file that is not ONNX, or is missing, is a FileFormatError naming it", (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const garbage = join(dir.path, "garbage.onnx");
  writeFileSync(garbage, Buffer.from([0x0f, 0xff, 0xff]));
  t.throws(() => checkTensorRTSupport(garbage), { instanceOf: FileFormatError, message: /garbage\.onnx is not an ONNX model/ });
  const empty = join(dir.path, "empty.onnx");
  writeFileSync(empty, new Uint8Array(0));
  t.throws(() => checkTensorRTSupport(empty), { instanceOf: FileFormatError, message: /it has no graph/ });
  t.throws(() => checkTensorRTSupport(join(dir.path, "missing.onnx")), { instanceOf: FileFormatError, message: /missing\.onnx: cannot read the file: no such file/ });
});
