import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { cachedConversion } from "../../lib/cache/onnx_cache.js";
import { converterVersion, convertCheckpoint } from "../../lib/convert/convert.js";
import { MAX_DEPTH } from "../../lib/models/blocks/postprocess.js";
import { MODEL_NAMES, modelSpec, type ModelName } from "../../lib/models/registry.js";
import { Weights } from "../../lib/models/weights.js";
import { toFloat16 } from "../../lib/onnx/fp16_pass.js";
import { Graph } from "../../lib/onnx/graph.js";
import { writeOnnx } from "../../lib/onnx/writer.js";
import { fixture } from "../support/fixtures.js";
import { withFloat16Storage } from "../onnx/float16_storage.js";
import { errorStats, tempDir } from "../onnx/helpers.js";
import { ELEM_TYPE, elementTypes, readOnnx } from "../onnx/onnx_reader.js";
import { BOUNDS, fixtureFloats, fixtureInput, runModelFile, tinyStateDict } from "./helpers.js";

/** float16's unit roundoff: the largest relative error of rounding to it. */
const U = 2 ** -11;

/**
 * The fp16 error model the bound comes from: the network's last linear output (the head's last
 * convolution, before any activation) is off by at most K float16 roundoffs of its largest
 * magnitude. Rounding a weight, an input or a result costs one U at most, and a correct fp16 graph
 * accumulates a few of them along the way (measured here: K <= 1.5 as ONNX Runtime rounds, K <=
 * 2.6 with every activation stored in float16); K = 8 leaves room for that, while a wrong op or
 * type shows up as errors of 1e-2 relative and more (e.g. the fixtures README's conversion
 * mistakes), far beyond it.
 */
const K = 8;

const MIN_DISPARITY = 1 / MAX_DEPTH;
const DISPARITY_SPAN = 1 / 0.001 - 1 / MAX_DEPTH;

/**
 * Per model: the scale of the network's last linear output (from `output_raw.npy`), and how much
 * the depth moves per unit of it at a pixel of depth `d` (the derivative of the model's conversion
 * to metres, written in terms of the depth itself).
 */
const SENSITIVITY: Readonly<Record<ModelName, { scale: (raw: Float32Array) => number; slope: (d: number) => number }>> = {
  // 0.3 / (1 + raw + 1e-5)
  dav1: { scale: largestMagnitude, slope: (d) => (d * d) / MAX_DEPTH },
  // 0.3 * sigmoid(raw)
  dav2: { scale: largestMagnitude, slope: (d) => d * (1 - d / MAX_DEPTH) },
  // 1 / (a + b * sigmoid(z)): the raw output is the sigmoid's, its logits z are the linear output.
  endodac: {
    scale: (raw) => largestMagnitude(raw.map((p) => Math.log(p / (1 - p)))),
    slope: (d) => {
      const p = (1 / d - MIN_DISPARITY) / DISPARITY_SPAN;
      return DISPARITY_SPAN * d * d * p * (1 - p);
    },
  },
  // 70000 / (a + b * disp)
  midas: { scale: largestMagnitude, slope: (d) => (DISPARITY_SPAN * d * d) / 70000 },
};

function largestMagnitude(values: Float32Array): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/**
 * Checks the depth against expected.npy pixel by pixel: within what an output error of K U of
 * its scale explains, plus the fp32 conversion's own bound. Returns the K the worst pixel needs.
 */
function fp16Deviation(arch: ModelName, depth: Float32Array): { neededK: number; within: boolean; stats: ReturnType<typeof errorStats> } {
  const expected = fixtureFloats(arch, "expected.npy");
  const { scale, slope } = SENSITIVITY[arch];
  const outputError = U * scale(fixtureFloats(arch, "output_raw.npy"));
  let neededK = 0;
  let within = true;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(depth[i] - expected[i]);
    const perK = slope(expected[i]) * outputError;
    neededK = Math.max(neededK, error / perK);
    if (error > K * perK + BOUNDS.maxRel * expected[i]) within = false;
  }
  return { neededK, within, stats: errorStats(depth, expected) };
}

function logDeviation(t: { log: (...values: unknown[]) => void }, deviation: ReturnType<typeof fp16Deviation>): void {
  const { stats, neededK } = deviation;
  t.log(`max abs ${stats.maxAbs.toExponential(2)} m, mean abs ${stats.meanAbs.toExponential(2)} m, max rel ${stats.maxRel.toExponential(2)}; worst pixel ${neededK.toFixed(2)} U of the output's scale (bound ${K})`);
}

for (const arch of MODEL_NAMES) {
  test(`${arch}: precision "fp16" writes a float16 body (uint8 in, float32 metres out, LayerNorm and Softmax in float32, no float32 weight in the body) that ONNX Runtime runs within the fp16 bound`, async (t) => {
    const output = join(tempDir(t), `${arch}-fp16.onnx`);
    const report = await convertCheckpoint({ model: arch, checkpoint: fixture(arch, "tiny.pth"), output, precision: "fp16" });
    t.is(report.precision, "fp16");
    const model = readOnnx(output);
    t.is(model.metadata.precision, "fp16");
    t.is(report.nodes, model.nodes.length);
    t.deepEqual(model.inputs, [{ name: "rgb", elemType: ELEM_TYPE.uint8 }]);
    t.deepEqual(model.outputs, [{ name: "depth", elemType: ELEM_TYPE.float32 }]);
    // TensorRT lets a uint8 network input feed a Cast and nothing else (not even Shape).
    const readers = model.nodes.filter((n) => n.inputs.includes("rgb"));
    t.deepEqual(readers.map((n) => [n.opType, n.ints.to]), [["Cast", ELEM_TYPE.float32]]);

    const types = elementTypes(model);
    const initializerTypes = new Map(model.initializers.map((i) => [i.name, i.elemType]));
    const heavy = model.nodes.filter((n) => ["Conv", "ConvTranspose", "Gemm", "MatMul"].includes(n.opType));
    t.true(heavy.length > 0 && heavy.every((n) => n.inputs.every((name) => types.get(name) === ELEM_TYPE.float16)), "convolutions and matrix products run in float16");

    const producer = new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const kept = model.nodes.filter((n) => n.opType === "LayerNormalization" || n.opType === "Softmax");
    t.true(kept.some((n) => n.opType === "LayerNormalization") && kept.some((n) => n.opType === "Softmax"));
    for (const node of kept) {
      const feeding = producer.get(node.inputs[0])!;
      t.deepEqual([feeding.opType, feeding.ints.to, types.get(feeding.inputs[0])], ["Cast", ELEM_TYPE.float32, ELEM_TYPE.float16], `${node.name} reads a float16 value cast to float32`);
      t.true(node.inputs.every((name) => types.get(name) === ELEM_TYPE.float32) && types.get(node.outputs[0]) === ELEM_TYPE.float32, node.name);
    }

    const float16Nodes = model.nodes.filter((n) => n.opType !== "Cast" && [...n.inputs, ...n.outputs].some((name) => types.get(name) === ELEM_TYPE.float16));
    const float32Weights = float16Nodes.flatMap((n) => n.inputs.filter((name) => initializerTypes.get(name) === ELEM_TYPE.float32));
    t.deepEqual(float32Weights, [], "no float32 initializer is read by a float16 op");
    const float16Bytes = model.initializers.filter((i) => i.elemType === ELEM_TYPE.float16).reduce((sum, i) => sum + 2 * i.dims.reduce((a, b) => a * b, 1), 0);
    t.true(float16Bytes > 0);

    const result = await runModelFile(output, fixtureInput(arch));
    t.is(result.depth.type, "float32");
    t.deepEqual(result.depth.dims, fixtureInput(arch).shape.slice(0, 2));
    const deviation = fp16Deviation(arch, result.depth.data as Float32Array);
    logDeviation(t, deviation);
    t.true(deviation.within);
  });

  test(`${arch}: with every float16 activation rounded as a GPU stores it, the depth stays within the fp16 bound`, async (t) => {
    const g = new Graph(arch);
    const weights = new Weights(await tinyStateDict(arch));
    modelSpec(arch).build!(g, weights, { channelOrder: "rgb" });
    weights.finish();
    const half = toFloat16(g, { input: g.stage("preprocessed")!, output: g.stage("raw")! });
    const path = join(tempDir(t), `${arch}-stored.onnx`);
    await writeOnnx(withFloat16Storage(half), path);
    const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: "disabled" });
    t.teardown(() => void session.release());
    const input = fixtureInput(arch);
    const result = await session.run({ rgb: new ort.Tensor("uint8", input.data, [...input.shape]) });
    const deviation = fp16Deviation(arch, result.depth.data as Float32Array);
    logDeviation(t, deviation);
    t.true(deviation.within);
  });
}

test("fp16 and fp32 conversions of one checkpoint are cached apart", async (t) => {
  const cache = tempDir(t);
  const checkpointSha256 = "0".repeat(64);
  const entry = (precision: string) =>
    cachedConversion(cache, { model: "dav1", checkpointSha256, converterVersion: converterVersion(), options: { channelOrder: "rgb", precision } }, async (onnxPath) => {
      writeFileSync(onnxPath, precision);
    });
  const fp32 = await entry("fp32");
  const fp16 = await entry("fp16");
  t.true(fp32.converted && fp16.converted);
  t.not(fp32.dir, fp16.dir);
  t.not(fp32.contentHash, fp16.contentHash);
  const again = await entry("fp32");
  t.false(again.converted);
  t.is(readFileSync(again.onnxPath, "utf8"), "fp32");
  t.is(readdirSync(join(cache, "onnx")).length, 2);
});
