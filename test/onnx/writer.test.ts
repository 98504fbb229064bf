import test from "ava";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { AbortError } from "../../lib/errors.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { Graph } from "../../lib/onnx/graph.js";
import { EXTERNAL_DATA_ALIGNMENT, writeOnnx } from "../../lib/onnx/writer.js";
import { randomFloats, runGraph, tempDir } from "./helpers.js";

/** y_i = x + w_i for three weights of 300, 5 and 700 floats (two large, one tiny). */
function threeWeightGraph(): { graph: Graph; weights: Float32Array[] } {
  const weights = [randomFloats(300, 1), randomFloats(5, 2), randomFloats(700, 3)];
  const g = new Graph("three");
  const x = g.input("x", "float32", []);
  weights.forEach((w, i) => g.output(g.add(x, g.initializer(ndarray(w, [w.length]), `w${i}`)), `y${i}`, [w.length]));
  return { graph: g, weights };
}

test("large tensors go to <model>.onnx.data at 64-byte aligned offsets, tiny ones stay in the model", async (t) => {
  const dir = tempDir(t);
  const { graph, weights } = threeWeightGraph();
  const files = await writeOnnx(graph, join(dir, "three.onnx"));
  t.is(files.data, join(dir, "three.onnx.data"));
  t.deepEqual(readdirSync(dir).sort(), ["three.onnx", "three.onnx.data"]);

  const data = readFileSync(files.data!);
  // w0 at 0 (1200 bytes), w2 at the next multiple of 64 after it; w1 (20 bytes) is embedded.
  const secondOffset = Math.ceil(1200 / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
  t.is(secondOffset, 1216);
  t.is(data.length, secondOffset + 2800);
  t.deepEqual(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + 1200)), weights[0]);
  t.deepEqual(new Float32Array(data.buffer.slice(data.byteOffset + secondOffset, data.byteOffset + secondOffset + 2800)), weights[2]);
  const model = readFileSync(files.model);
  t.true(model.includes(Buffer.from("three.onnx.data")));
  t.true(model.includes(Buffer.from(weights[1].buffer)));
  t.false(model.includes(Buffer.from(weights[0].buffer.slice(0, 64))));
});

test("ONNX Runtime reads the external weights back (model opened from its path)", async (t) => {
  const { graph, weights } = threeWeightGraph();
  const result = await runGraph(t, graph, { x: { type: "float32", data: Float32Array.of(1), dims: [] } });
  weights.forEach((w, i) => t.deepEqual(result[`y${i}`].data, w.map((v) => Math.fround(v + 1))));
});

test("externalDataThreshold false writes one self-contained file", async (t) => {
  const dir = tempDir(t);
  const { graph, weights } = threeWeightGraph();
  const files = await writeOnnx(graph, join(dir, "single.onnx"), { externalDataThreshold: false });
  t.is(files.data, undefined);
  t.deepEqual(readdirSync(dir), ["single.onnx"]);
  t.true(statSync(files.model).size > 4 * (300 + 5 + 700));
  const session = await ort.InferenceSession.create(readFileSync(files.model));
  const result = await session.run({ x: new ort.Tensor("float32", Float32Array.of(0), []) });
  t.deepEqual(result.y2.data, weights[2]);
});

test("float16 and int64 initializers are stored in their own encodings", async (t) => {
  const g = new Graph("types");
  const half = g.initializer(ndarray(Float32Array.of(1, -2, 0.5, 65504), [4], "float16"), "half");
  const long = g.initializer(ndarray(BigInt64Array.of(3n, -4n), [2]), "long");
  g.output(g.cast(half, "float32"), "h", [4]);
  g.output(g.cast(long, "float32"), "l", [2]);
  const result = await runGraph(t, g, {});
  t.deepEqual([...(result.h.data as Float32Array)], [1, -2, 0.5, 65504]);
  t.deepEqual([...(result.l.data as Float32Array)], [3, -4]);
});

test("metadata and doc string are written into the model", async (t) => {
  const dir = tempDir(t);
  const { graph } = threeWeightGraph();
  const files = await writeOnnx(graph, join(dir, "meta.onnx"), { metadata: { model: "dav1", converter_version: "7" }, docString: "hello docs" });
  const model = readFileSync(files.model);
  for (const text of ["converter_version", "dav1", "hello docs", "endosynth"]) t.true(model.includes(Buffer.from(text)), text);
});

test("an aborted write leaves neither file behind", async (t) => {
  const dir = tempDir(t);
  const { graph } = threeWeightGraph();
  const controller = new AbortController();
  const written = writeOnnx(graph, join(dir, "aborted.onnx"), {
    signal: controller.signal,
    onProgress: () => controller.abort(),
  });
  await t.throwsAsync(written, { instanceOf: AbortError, code: "ERR_ENDOSYNTH_ABORTED" });
  t.deepEqual(readdirSync(dir), []);
  t.false(existsSync(join(dir, "aborted.onnx.data")));
});

test("progress reports the weights written, ending at 1", async (t) => {
  const dir = tempDir(t);
  const { graph } = threeWeightGraph();
  const fractions: number[] = [];
  await writeOnnx(graph, join(dir, "progress.onnx"), { onProgress: (p) => fractions.push(p.fraction ?? -1) });
  t.deepEqual(fractions, [1200 / 4000, 1]);
});
