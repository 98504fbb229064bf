/**
 * The input half of every model's inference contract, as an ONNX subgraph: a uint8 [H, W, C] frame
 * of any size (C = 3 or 4, alpha ignored) becomes the normalised float32 [1, 3, h, w] tensor the
 * network was fed by the reference Python wrapper (`preprocessed.npy` in the fixtures).
 *
 * The resize reproduces OpenCV's `cv2.resize(..., INTER_CUBIC)` exactly rather than ONNX's cubic
 * Resize (which is ~1e-3 off, and costs 400-600 ms on a 1080x1920 frame in ONNX Runtime): for each
 * output column the graph computes OpenCV's tap indices and float32 Keys weights from the input's
 * dynamic shape, then takes 4 Gathers and a weighted sum per axis, horizontal pass first.
 * @module
 */
import type { Graph, Value } from "../../onnx/graph.js";

/** Which order the caller's frames are in (see the fixtures README, "The convention endosynth follows"). */
export type ChannelOrder = "rgb" | "bgr";

/** Per-channel normalisation `(x / 255 - mean) / std`, channels in the order the network sees them. */
export interface Normalisation {
  /** Subtracted from each channel (in [0, 1] units), in network channel order. */
  readonly mean: readonly [number, number, number];
  /** Each channel is then divided by this, in network channel order. */
  readonly std: readonly [number, number, number];
}

/** Everything the pre-processing of a model depends on. */
export interface PreprocessSpec {
  /** Network input height (a multiple of the patch size), e.g. 420. */
  readonly height: number;
  /** Network input width, e.g. 742. */
  readonly width: number;
  readonly normalisation: Normalisation;
  readonly channelOrder: ChannelOrder;
}

/** ImageNet statistics, used by Depth Anything v1/v2 and EndoDAC. */
export const IMAGENET_NORMALISATION: Normalisation = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Name of every converted model's input. */
export const INPUT_NAME = "rgb";

/** OpenCV's cubic kernel parameter (Keys, A = -0.75). */
const KEYS_A = -0.75;

/**
 * Declares the model input, uint8 [H, W, C] with every dimension symbolic, and returns it cast to
 * float32: TensorRT accepts uint8 only at the network's inputs, feeding a Cast and nothing else (not
 * even Shape), so every later op reads this float32 frame.
 */
export function imageInput(g: Graph): Value {
  return g.cast(g.input(INPUT_NAME, "uint8", ["H", "W", "C"]), "float32");
}

/**
 * The channels the network sees, in order: the reference wrapper runs `cvtColor(BGR2RGB)` on the
 * array it is given, so an RGB frame reaches the network as B, G, R; a frame already in network
 * order ("bgr") passes unchanged. Also drops an alpha channel.
 */
export function networkChannels(order: ChannelOrder): readonly number[] {
  return order === "rgb" ? [2, 1, 0] : [0, 1, 2];
}

/** The 4 tap indices (int64 [size]) and float32 weights ([size]) of one resized axis. */
interface CubicTaps {
  indices: Value[];
  weights: Value[];
}

/**
 * OpenCV's INTER_CUBIC taps for resizing an axis of dynamic length `inputSize` (int64 scalar) to
 * `outputSize`. OpenCV computes the source coordinate `(d + 0.5) * (in / out) - 0.5` in double and
 * rounds it to float32; the graph gets the same float32 exactly as `((2d + 1) * in - out) / (2 * out)`,
 * an integer numerator (exact in float32 below 2^24, i.e. inputs up to ~11,000 px) over a
 * constant, correctly rounded by one division.
 */
export function cubicTaps(g: Graph, inputSize: Value, outputSize: number): CubicTaps {
  return g.scoped("cubic_taps", () => {
    const oddSteps = g.constant(Array.from({ length: outputSize }, (_, d) => 2 * d + 1), "int64");
    const numerator = g.cast(g.sub(g.mul(oddSteps, inputSize), outputSize), "float32");
    const source = g.div(numerator, 2 * outputSize);
    const start = g.floor(source);
    const t = g.sub(source, start);

    // Keys' cubic weights exactly as OpenCV's interpolateCubic evaluates them in float32.
    const A = KEYS_A;
    const t1 = g.add(t, 1);
    const w0 = g.sub(g.mul(g.add(g.mul(g.sub(g.mul(t1, A), 5 * A), t1), 8 * A), t1), 4 * A);
    const w1 = g.add(g.mul(g.mul(g.sub(g.mul(t, A + 2), A + 3), t), t), 1);
    const u = g.sub(g.constant(1), t);
    const w2 = g.add(g.mul(g.mul(g.sub(g.mul(u, A + 2), A + 3), u), u), 1);
    const w3 = g.sub(g.sub(g.sub(g.constant(1), w0), w1), w2);

    // Taps start-1 .. start+2, clamped to the image (OpenCV's replicate border). Max/Min rather
    // than Clip: TensorRT's parser wants Clip's bounds constant, and the upper one is the input's.
    const last = g.cast(g.sub(inputSize, 1), "float32");
    const indices = [-1, 0, 1, 2].map((offset) => g.cast(g.min(g.max(g.add(start, offset), 0), last), "int64"));
    return { indices, weights: [w0, w1, w2, w3] };
  });
}

/** One separable cubic pass along `axis`: the left-to-right sum of 4 gathered planes times their weights. */
function cubicPass(g: Graph, x: Value, axis: number, taps: CubicTaps, weightShape: readonly number[]): Value {
  let sum: Value | undefined;
  for (let j = 0; j < 4; j++) {
    const weight = g.reshape(taps.weights[j], weightShape);
    const term = g.mul(g.gather(x, taps.indices[j], axis), weight);
    sum = sum ? g.add(sum, term) : term;
  }
  return sum!;
}

/**
 * Pre-processing subgraph: the frame [H, W, C] (float32 pixel values 0-255, from
 * {@link imageInput}) → float32 [1, 3, height, width], as the reference wrapper computes it
 * (cvtColor, /255, INTER_CUBIC resize, normalisation, HWC → CHW).
 */
export function preprocess(g: Graph, frame: Value, spec: PreprocessSpec): Value {
  return g.scoped("preprocess", () => {
    const inputShape = g.shapeOf(frame);
    const inputHeight = g.gather(inputShape, 0, 0);
    const inputWidth = g.gather(inputShape, 1, 0);

    // Planar layout first: ONNX Runtime gathers, transposes and broadcasts whole rows fast but
    // 3-float pixels slowly. Separable passes commute, so the vertical one runs first (it shrinks
    // the image most) and the horizontal one on the transposed planes, both gathering rows.
    const planes = g.transpose(frame, [2, 0, 1]);
    const vertical = cubicPass(g, planes, 1, cubicTaps(g, inputHeight, spec.height), [1, spec.height, 1]);
    const columns = g.transpose(vertical, [0, 2, 1]);
    const horizontal = cubicPass(g, columns, 1, cubicTaps(g, inputWidth, spec.width), [1, spec.width, 1]);
    const resized = g.transpose(horizontal, [0, 2, 1]);

    const ordered = g.gather(resized, networkChannels(spec.channelOrder), 0);
    const { mean, std } = spec.normalisation;
    const normalised = g.div(g.sub(g.div(ordered, 255), g.constant(mean, "float32", [3, 1, 1])), g.constant(std, "float32", [3, 1, 1]));
    const chw = g.unsqueeze(normalised, [0]);
    // Where the network body starts: the float16 pass leaves everything before it in float32.
    g.markStage("preprocessed", chw);
    return chw;
  });
}
