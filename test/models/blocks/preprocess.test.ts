import test from "ava";
import { readNpy } from "../../../lib/io/npy.js";
import type { NdArray } from "../../../lib/ndarray/ndarray.js";
import { Graph } from "../../../lib/onnx/graph.js";
import { IMAGENET_NORMALISATION, imageInput, preprocess, type ChannelOrder } from "../../../lib/models/blocks/preprocess.js";
import { fixture } from "../../support/fixtures.js";
import { errorStats, runGraph, type WithTeardown } from "../../onnx/helpers.js";

const HEIGHT = 420;
const WIDTH = 742;

async function preprocessed(t: WithTeardown, image: NdArray<"uint8">, channelOrder: ChannelOrder = "rgb"): Promise<Float32Array> {
  const g = new Graph("preprocess");
  g.output(preprocess(g, imageInput(g), { height: HEIGHT, width: WIDTH, normalisation: IMAGENET_NORMALISATION, channelOrder }), "x");
  const result = await runGraph(t, g, { rgb: { type: "uint8", data: image.data, dims: image.shape } });
  return result.x.data as Float32Array;
}

function reverseChannels(image: NdArray<"uint8">): NdArray<"uint8"> {
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i += 3) [data[i], data[i + 1], data[i + 2]] = [image.data[i + 2], image.data[i + 1], image.data[i]];
  return { data, shape: image.shape, dtype: "uint8" };
}

/**
 * The fixtures README's bitwise spec of cv2.resize(INTER_CUBIC) + normalisation, in double, written
 * independently of the graph (direct loops, horizontal pass then vertical, B, G, R order).
 */
function referencePreprocess(image: NdArray<"uint8">): Float64Array {
  const [h, w] = image.shape;
  const taps = (src: number, dst: number, d: number): { index: number[]; weight: number[] } => {
    const f = Math.fround((d + 0.5) * (1 / (dst / src)) - 0.5);
    const s = Math.floor(f);
    const t = Math.fround(f - s);
    const A = -0.75;
    const r = Math.fround;
    const w0 = r(r(r(r(r(A * r(t + 1)) - r(5 * A)) * r(t + 1)) + r(8 * A)) * r(t + 1)) - r(4 * A);
    const w1 = r(r(r(r(r((A + 2) * t) - (A + 3)) * t) * t) + 1);
    const u = r(1 - t);
    const w2 = r(r(r(r(r((A + 2) * u) - (A + 3)) * u) * u) + 1);
    const w3 = r(r(r(1 - r(w0)) - w1) - w2);
    return { index: [-1, 0, 1, 2].map((o) => Math.min(Math.max(s + o, 0), src - 1)), weight: [r(w0), w1, w2, w3] };
  };
  const horizontal = new Float64Array(h * WIDTH * 3);
  for (let x = 0; x < WIDTH; x++) {
    const { index, weight } = taps(w, WIDTH, x);
    for (let y = 0; y < h; y++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += (image.data[(y * w + index[k]) * 3 + (2 - c)] / 255) * weight[k];
        horizontal[(y * WIDTH + x) * 3 + c] = sum;
      }
    }
  }
  const out = new Float64Array(3 * HEIGHT * WIDTH);
  for (let y = 0; y < HEIGHT; y++) {
    const { index, weight } = taps(h, HEIGHT, y);
    for (let x = 0; x < WIDTH; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += horizontal[(index[k] * WIDTH + x) * 3 + c] * weight[k];
        out[(c * HEIGHT + y) * WIDTH + x] = (sum - IMAGENET_NORMALISATION.mean[c]) / IMAGENET_NORMALISATION.std[c];
      }
    }
  }
  return out;
}

function noiseImage(height: number, width: number, seed: number): NdArray<"uint8"> {
  let state = seed;
  const data = Uint8Array.from({ length: height * width * 3 }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 24;
  });
  return { data, shape: [height, width, 3], dtype: "uint8" };
}

for (const arch of ["dav1", "dav2"]) {
  test(`the pre-processing subgraph reproduces ${arch}/preprocessed.npy from input.npy`, async (t) => {
    const input = readNpy(fixture(arch, "input.npy")) as NdArray<"uint8">;
    const expected = readNpy(fixture(arch, "preprocessed.npy"));
    t.deepEqual(expected.shape, [1, 3, HEIGHT, WIDTH]);
    const stats = errorStats(await preprocessed(t, input), expected.data as Float32Array);
    t.log(`${arch} preprocessed: max abs ${stats.maxAbs.toExponential(2)}, mean abs ${stats.meanAbs.toExponential(2)}`);
    t.true(stats.maxAbs < 5e-6, `max abs ${stats.maxAbs}`);
  });
}

for (const [height, width] of [[1080, 1920], [37, 53], [421, 741]]) {
  test(`OpenCV's cubic resize is reproduced for a ${height}x${width} noise frame`, async (t) => {
    const image = noiseImage(height, width, height + width);
    const stats = errorStats(await preprocessed(t, image), referencePreprocess(image));
    t.true(stats.maxAbs < 5e-6, `max abs ${stats.maxAbs}`);
  });
}

test('channelOrder "bgr" on a channel-reversed frame gives exactly the "rgb" result', async (t) => {
  const input = readNpy(fixture("dav2", "input.npy")) as NdArray<"uint8">;
  t.deepEqual(await preprocessed(t, reverseChannels(input), "bgr"), await preprocessed(t, input, "rgb"));
});

test("an RGBA frame's alpha channel is ignored", async (t) => {
  const rgb = noiseImage(60, 90, 5);
  const rgba = new Uint8Array(60 * 90 * 4);
  for (let i = 0; i < 60 * 90; i++) {
    rgba.set(rgb.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = (i * 37) % 256;
  }
  t.deepEqual(await preprocessed(t, { data: rgba, shape: [60, 90, 4], dtype: "uint8" }), await preprocessed(t, rgb));
});

test("a uniform frame stays uniform: cubic weights sum to 1 at every output pixel", async (t) => {
  const image: NdArray<"uint8"> = { data: new Uint8Array(33 * 1500 * 3).fill(200), shape: [33, 1500, 3], dtype: "uint8" };
  const out = await preprocessed(t, image);
  for (let c = 0; c < 3; c++) {
    const plane = out.subarray(c * HEIGHT * WIDTH, (c + 1) * HEIGHT * WIDTH);
    const expected = (200 / 255 - IMAGENET_NORMALISATION.mean[c]) / IMAGENET_NORMALISATION.std[c];
    t.true(errorStats(plane, new Float64Array(plane.length).fill(expected)).maxAbs < 1e-5);
  }
});
