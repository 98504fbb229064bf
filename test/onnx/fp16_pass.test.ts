import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { CheckpointError, InputError } from "../../lib/errors.js";
import { roundFloat16 } from "../../lib/ndarray/float16.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { toFloat16 } from "../../lib/onnx/fp16_pass.js";
import { Graph } from "../../lib/onnx/graph.js";
import { writeOnnx, type OnnxGraph } from "../../lib/onnx/writer.js";
import { withFloat16Storage } from "./float16_storage.js";
import { tempDir, type WithTeardown } from "./helpers.js";
import { ELEM_TYPE, elementTypes, readOnnx, type ReadModel } from "./onnx_reader.js";

/** Writes the converted graph, reads the file back and runs it on `x` (float32). */
async function writeAndRun(
  t: WithTeardown,
  graph: OnnxGraph,
  x: Float32Array,
  dims: number[],
  options: ort.InferenceSession.SessionOptions = {},
): Promise<{ model: ReadModel; result: Record<string, ort.Tensor> }> {
  const path = join(tempDir(t), `${graph.name}.onnx`);
  await writeOnnx(graph, path);
  const session = await ort.InferenceSession.create(path, options);
  t.teardown(() => void session.release());
  return { model: readOnnx(path), result: await session.run({ x: new ort.Tensor("float32", x, dims) }) };
}

const float32 = (values: number[]): Float32Array => Float32Array.from(values);

test("weights inside the region are rounded to the nearest float16 (ties to even); outside they stay float32", async (t) => {
  const g = new Graph("rounding");
  const x = g.input("x", "float32", [1, 3]);
  // diag(1 + 2^-11, 1 + 3 * 2^-11, 0.1): two ties (to 1 and to 1 + 2^-9) and an inexact value.
  const weight = g.initializer(ndarray(float32([1 + 2 ** -11, 0, 0, 0, 1 + 3 * 2 ** -11, 0, 0, 0, 0.1]), [3, 3]), "w");
  const raw = g.gemm(x, weight, undefined, { transB: true });
  const scale = g.initializer(ndarray(float32([1 + 2 ** -11]), [1]), "post_scale");
  g.output(g.mul(raw, scale), "y", [1, 3]);

  const half = toFloat16(g, { input: x, output: raw });
  const { model, result } = await writeAndRun(t, half, float32([1, 1, 1]), [1, 3]);
  const types = new Map(model.initializers.map((i) => [i.name, i.elemType]));
  t.is(types.get("w"), ELEM_TYPE.float16);
  t.is(types.get("post_scale"), ELEM_TYPE.float32);
  t.deepEqual(model.outputs, [{ name: "y", elemType: ELEM_TYPE.float32 }]);
  t.deepEqual(model.inputs, [{ name: "x", elemType: ELEM_TYPE.float32 }]);
  const post = 1 + 2 ** -11;
  const expected = [1 * post, (1 + 2 ** -9) * post, 0.0999755859375 * post].map(Math.fround);
  t.deepEqual([...(result.y.data as Float32Array)], expected);
  t.is(roundFloat16(0.1), 0.0999755859375);
});

test("LayerNormalization and Softmax run in float32 between Casts, with float32 scale and bias", async (t) => {
  const g = new Graph("islands");
  const x = g.input("x", "float32", [2, 4]);
  const scale = g.initializer(ndarray(float32([1, 0.5, 2, 1]), [4]), "ln.weight");
  const bias = g.initializer(ndarray(float32([0, 0.25, 0, -1]), [4]), "ln.bias");
  const body = g.mul(x, 1);
  const raw = g.softmax(g.mul(g.layerNormalization(body, scale, bias, 1e-6), 2), -1);
  g.output(raw, "y", [2, 4]);

  const half = toFloat16(g, { input: x, output: raw });
  t.deepEqual(half.summary.float32Nodes, { LayerNormalization: 1, Softmax: 1 });
  // Squares of 300 overflow float16 (65504), as a float16 LayerNorm's variance would.
  const input = float32([300, 301, 302, 303, -2, 0, 2, 4]);
  const { model, result } = await writeAndRun(t, half, input, [2, 4]);

  const types = elementTypes(model);
  const producer = new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const readersOf = (value: string): string[] => model.nodes.filter((n) => n.inputs.includes(value)).map((n) => `${n.opType}${n.ints.to ?? ""}`);
  const [ln, softmax] = ["LayerNormalization", "Softmax"].map((opType) => model.nodes.find((n) => n.opType === opType)!);
  for (const node of [ln, softmax]) {
    t.is(types.get(node.inputs[0]), ELEM_TYPE.float32, `${node.opType} input`);
    const feeding = producer.get(node.inputs[0])!;
    t.deepEqual([feeding.opType, feeding.ints.to, types.get(feeding.inputs[0])], ["Cast", ELEM_TYPE.float32, ELEM_TYPE.float16]);
    t.is(types.get(node.outputs[0]), ELEM_TYPE.float32, `${node.opType} output`);
  }
  // LayerNorm's result goes back to float16 for the Mul; the softmax is the region's output, so
  // the graph output reads its float32 result directly (no round trip through float16).
  t.deepEqual(readersOf(ln.outputs[0]), [`Cast${ELEM_TYPE.float16}`]);
  t.deepEqual(readersOf(softmax.outputs[0]), ["Identity"]);
  t.deepEqual(ln.inputs.slice(1), ["ln.weight", "ln.bias"]);
  t.is(types.get("ln.weight"), ELEM_TYPE.float32);

  // Reference: LayerNorm and softmax in double, rounded to float16 where the graph stores float16.
  const expected: number[] = [];
  for (let row = 0; row < 2; row++) {
    const v = [...input.subarray(4 * row, 4 * row + 4)].map(roundFloat16);
    const mean = v.reduce((a, b) => a + b) / 4;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    const normalised = v.map((value, i) => 2 * roundFloat16(((value - mean) / Math.sqrt(variance + 1e-6)) * [1, 0.5, 2, 1][i] + [0, 0.25, 0, -1][i]));
    const exps = normalised.map((value) => Math.exp(value - Math.max(...normalised)));
    expected.push(...exps.map((e) => roundFloat16(e / exps.reduce((a, b) => a + b))));
  }
  const actual = result.y.data as Float32Array;
  // ORT's float32 LayerNorm may round to the other float16 neighbour of the double result (one
  // step of 2^-10 relative on values up to ~2.5, doubled: up to ~5e-3 on a softmax logit, so
  // ~1e-2 relative on a probability), and the softmax output's own rounding adds 2^-11.
  expected.forEach((e, i) => t.true(Math.abs(actual[i] - e) <= 2 ** -6 * Math.abs(e), `y[${i}] = ${actual[i]}, expected ${e}`));
  t.true(actual.every(Number.isFinite));
});

test("a constant used inside and outside the region gets a float16 twin; the outside keeps float32", async (t) => {
  const g = new Graph("shared");
  const x = g.input("x", "float32", [3]);
  const raw = g.mul(g.add(x, 0), 0.1);
  g.output(g.mul(raw, 0.1), "y", [3]);
  t.is(g.nodes.filter((n) => n.inputs.includes(g.constant(0.1).name)).length, 2);

  const half = toFloat16(g, { input: x, output: raw });
  const { model, result } = await writeAndRun(t, half, float32([1, 2, 4]), [3]);
  const shared = g.constant(0.1).name;
  const initializers = new Map(model.initializers.map((i) => [i.name, i.elemType]));
  t.is(initializers.get(shared), ELEM_TYPE.float32);
  t.is(initializers.get(`${shared}/fp16`), ELEM_TYPE.float16);
  const [inside, outside] = model.nodes.filter((n) => n.opType === "Mul");
  t.deepEqual([inside.inputs[1], outside.inputs[1]], [`${shared}/fp16`, shared]);
  const tenth = roundFloat16(0.1);
  t.deepEqual([...(result.y.data as Float32Array)], [1, 2, 4].map((v) => Math.fround(roundFloat16(v * tenth) * Math.fround(0.1))));
});

test("integer values, Resize scales and Shape results inside the region keep their types; a Cast to float32 becomes a Cast to float16", async (t) => {
  const g = new Graph("types");
  const x = g.input("x", "float32", [1, 1, 2, 2]);
  const upsampled = g.resize(x, { scales: [1, 1, 2, 2], mode: "nearest", coordinateTransformationMode: "asymmetric", nearestMode: "floor" });
  const height = g.cast(g.gather(g.shapeOf(upsampled), 2, 0), "float32");
  const flat = g.reshape(upsampled, g.concat([g.constant([1], "int64"), g.shapeOf(upsampled, 2, 3), g.constant([-1], "int64")], 0));
  const raw = g.mul(flat, height);
  g.output(raw, "y");

  const half = toFloat16(g, { input: x, output: raw });
  const { model, result } = await writeAndRun(t, half, float32([1, 2, 3, 4]), [1, 1, 2, 2]);
  const types = elementTypes(model);
  const resize = model.nodes.find((n) => n.opType === "Resize")!;
  t.is(types.get(resize.inputs[0]), ELEM_TYPE.float16);
  t.is(types.get(resize.inputs[2]), ELEM_TYPE.float32, "scales stay float32");
  const reshape = model.nodes.find((n) => n.opType === "Reshape")!;
  t.is(types.get(reshape.inputs[1]), ELEM_TYPE.int64);
  const casts = model.nodes.filter((n) => n.opType === "Cast" && types.get(n.inputs[0]) === ELEM_TYPE.int64);
  t.deepEqual(casts.map((c) => c.ints.to), [ELEM_TYPE.float16]);
  t.deepEqual(result.y.dims, [1, 4, 4]);
  t.deepEqual([...(result.y.data as Float32Array)], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4].map((v) => v * 4));
});

test("the pass leaves the graph it reads unchanged and shares its weights (encoded only when written)", async (t) => {
  const g = new Graph("lazy");
  const x = g.input("x", "float32", [2]);
  const data = float32([0.1, 0.2]);
  const raw = g.mul(x, g.initializer(ndarray(data, [2]), "w"));
  g.output(raw, "y");
  const nodes = g.nodes.map((n) => ({ ...n }));

  const half = toFloat16(g, { input: x, output: raw });
  t.deepEqual(g.nodes, nodes);
  t.is(g.initializers[0].array.dtype, "float32");
  // Weights changed after the pass are what gets written: the pass kept no copy of its own.
  data[0] = 3;
  const { result } = await writeAndRun(t, half, float32([1, 1]), [2]);
  t.deepEqual([...(result.y.data as Float32Array)], [3, roundFloat16(0.2)]);
});

test("ops the pass does not know are refused when they touch float32 values in the region", (t) => {
  const g = new Graph("unknown");
  const x = g.input("x", "float32", [2, 2]);
  const [raw] = g.node("Einsum", [x, x], { equation: { type: "string", value: "ij,jk->ik" } }, [{ dtype: "float32", shape: [2, 2] }]);
  g.output(g.mul(raw, 1), "y");
  const error = t.throws(() => toFloat16(g, { input: x, output: raw }), { instanceOf: InputError });
  t.is(error?.code, "ERR_ENDOSYNTH_INPUT");
  t.regex(error?.message ?? "", /does not know the op Einsum \(node Einsum_\d+_node\)/);
});

test("a region whose output is not computed from its input is refused", (t) => {
  const g = new Graph("empty");
  const x = g.input("x", "float32", [2]);
  const other = g.input("z", "float32", [2]);
  const raw = g.relu(other);
  g.output(g.add(raw, x), "y");
  const error = t.throws(() => toFloat16(g, { input: x, output: raw }), { instanceOf: InputError });
  t.regex(error?.message ?? "", /float16 region of the ONNX graph empty is empty: Relu_\d+ is not computed from x/);
});

test("a graph output inside the region is refused: outputs stay float32", (t) => {
  const g = new Graph("leaky");
  const x = g.input("x", "float32", [2]);
  const hidden = g.relu(x);
  const raw = g.mul(hidden, 2);
  g.output(hidden, hidden.name);
  g.output(g.mul(raw, 1), "y");
  const error = t.throws(() => toFloat16(g, { input: x, output: raw }), { instanceOf: InputError });
  t.regex(error?.message ?? "", new RegExp(`graph output ${hidden.name} lies inside the float16 region`));
});

test("a weight beyond float16's range fails the write with a CheckpointError naming it, leaving no file", async (t) => {
  const g = new Graph("overflow");
  const x = g.input("x", "float32", [301]);
  // 301 values: large enough for the external data file, whose write the error must also undo.
  const raw = g.mul(x, g.initializer(ndarray(float32(Array(300).fill(1).concat([70000])), [301]), "blocks.0.gamma"));
  g.output(g.mul(raw, 1), "y");
  const dir = tempDir(t);
  const error = await t.throwsAsync(writeOnnx(toFloat16(g, { input: x, output: raw }), join(dir, "overflow.onnx")), { instanceOf: CheckpointError });
  t.is(error?.key, "blocks.0.gamma");
  t.regex(error?.message ?? "", /blocks\.0\.gamma holds 70000, beyond float16's range \(±65504\): convert this checkpoint with precision "fp32"/);
  t.deepEqual(readdirSync(dir), []);
});


test("with float16 storage, ONNX Runtime rounds every float16 activation, as a GPU stores them", async (t) => {
  const g = new Graph("storage");
  const x = g.input("x", "float32", [2]);
  const ones = g.initializer(ndarray(float32([1, 1]), [2]), "ones");
  const raw = g.mul(g.mul(x, ones), ones);
  g.output(raw, "y");
  const half = toFloat16(g, { input: x, output: raw });
  // 1 + 2^-13 rounds to 1; 3 * 2^-25 lies halfway between the subnormals 2^-24 and 2^-23 (even).
  const input = float32([1 + 2 ** -13, 3 * 2 ** -25]);
  const asWritten = await writeAndRun(t, half, input, [2]);
  t.log(`as written, ONNX Runtime returns ${[...(asWritten.result.y.data as Float32Array)]} for ${[...input]}`);
  const stored = await writeAndRun(t, withFloat16Storage(half), input, [2], { graphOptimizationLevel: "disabled" });
  t.deepEqual([...(stored.result.y.data as Float32Array)], [1, 2 ** -23]);
  // One per Mul, and the graph output's.
  t.is(stored.model.nodes.filter((n) => n.opType === "Identity").length, 3);
});
