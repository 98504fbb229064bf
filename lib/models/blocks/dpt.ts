/**
 * The DPT neck and head shared by Depth Anything v1 and v2 (`DPTHead` in both repositories; EndoDAC
 * reuses the neck under its own output convolutions):
 * projections of four token maps, resize layers (4x and 2x transposed convolutions, identity,
 * stride-2 convolution), `scratch.layerN_rn`, four FeatureFusionBlocks of ResidualConvUnits with
 * bilinear align-corners upsampling, and the output convolutions.
 * @module
 */
import { CheckpointError } from "../../errors.js";
import type { Graph, Value } from "../../onnx/graph.js";
import type { Weights } from "../weights.js";

/** The neck's dimensions (projections to the last fusion block), as read from a checkpoint. */
export interface DptNeckDims {
  /** Width of the token maps fed in (the encoder's embed_dim). */
  inChannels: number;
  /** Channels after each of the four projections. */
  outChannels: readonly [number, number, number, number];
  /** Width of the fusion path (`features`). */
  features: number;
}

/** The head's dimensions, as read from a checkpoint. */
export interface DptDims extends DptNeckDims {
  /** Width of output_conv2's hidden layer (32). */
  headFeatures2: number;
}

/** Options of {@link dptHead}. */
export interface DptHeadOptions {
  /** Key prefix of the head, e.g. `"depth_head."`. */
  prefix: string;
  /** Whether output_conv2 ends in its ReLU (v1: yes; EndoSynth's v2 removed it). */
  finalRelu: boolean;
}

/** Refuses a DPT neck whose projections do not read the encoder's token width. */
export function assertNeckFitsEncoder(neck: DptNeckDims, prefix: string, encoderWidth: number): void {
  if (neck.inChannels === encoderWidth) return;
  throw new CheckpointError(`${prefix}projects.0.weight reads ${neck.inChannels} channels but the encoder's tokens have ${encoderWidth}`, {
    key: `${prefix}projects.0.weight`,
  });
}

/**
 * Reads the neck's dimensions from the checkpoint's shapes.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when a defining key is missing.
 */
export function readDptNeckDims(weights: Weights, prefix: string): DptNeckDims {
  const projections = [0, 1, 2, 3].map((i) => weights.dimensions(`${prefix}projects.${i}.weight`, 4, "a DPT head"));
  return {
    inChannels: projections[0][1],
    outChannels: projections.map((s) => s[0]) as unknown as DptDims["outChannels"],
    features: weights.dimensions(`${prefix}scratch.layer1_rn.weight`, 4, "a DPT head")[0],
  };
}

/**
 * Reads the head's dimensions from the checkpoint's shapes.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when a defining key is missing.
 */
export function readDptDims(weights: Weights, prefix: string): DptDims {
  return { ...readDptNeckDims(weights, prefix), headFeatures2: weights.dimensions(`${prefix}scratch.output_conv2.0.weight`, 4, "a DPT head")[0] };
}

/** A PyTorch Conv2d stored under `key` (with or without bias), square kernel, padding on all sides. */
export function conv2d(
  g: Graph,
  weights: Weights,
  x: Value,
  key: string,
  shape: readonly [number, number, number, number],
  options: { stride?: number; padding?: number; bias?: boolean } = {},
): Value {
  const { stride = 1, padding = 0, bias = true } = options;
  const weight = weights.value(g, `${key}.weight`, shape);
  const biasValue = bias ? weights.value(g, `${key}.bias`, [shape[0]]) : undefined;
  return g.conv(x, weight, biasValue, { strides: [stride, stride], pads: [padding, padding, padding, padding] });
}

/** A PyTorch ConvTranspose2d with kernel = stride (the DPT's 4x and 2x upsamplers), weight [in, out, k, k]. */
export function convTranspose2d(g: Graph, weights: Weights, x: Value, key: string, channels: number, factor: number): Value {
  const weight = weights.value(g, `${key}.weight`, [channels, channels, factor, factor]);
  const bias = weights.value(g, `${key}.bias`, [channels]);
  return g.convTranspose(x, weight, bias, { strides: [factor, factor] });
}

/** `F.interpolate(x, size, mode="bilinear", align_corners=True)` on a [1, C, h, w] tensor. */
export function bilinearAlignCorners(g: Graph, x: Value, height: number, width: number): Value {
  const channels = x.shape?.[1];
  if (typeof channels !== "number") throw new RangeError(`bilinear resize needs a static channel count, got ${x.shape}`);
  return g.resize(x, { sizes: [1, channels, height, width], mode: "linear", coordinateTransformationMode: "align_corners" });
}

/** ResidualConvUnit: `conv2(relu(conv1(relu(x)))) + x` (no batch norm in Depth Anything). */
export function residualConvUnit(g: Graph, weights: Weights, x: Value, key: string, features: number): Value {
  const shape = [features, features, 3, 3] as const;
  const hidden = conv2d(g, weights, g.relu(x), `${key}.conv1`, shape, { padding: 1 });
  return g.add(conv2d(g, weights, g.relu(hidden), `${key}.conv2`, shape, { padding: 1 }), x);
}

/**
 * FeatureFusionBlock: adds `resConfUnit1(skip)` to the path (when there is a skip), applies
 * `resConfUnit2`, upsamples bilinearly with align_corners to `size`, then `out_conv` (1x1).
 */
export function featureFusionBlock(
  g: Graph,
  weights: Weights,
  path: Value,
  skip: Value | undefined,
  key: string,
  features: number,
  size: readonly [number, number],
): Value {
  return g.scoped(key.split(".").pop()!, () => {
    const fused = skip ? g.add(path, residualConvUnit(g, weights, skip, `${key}.resConfUnit1`, features)) : path;
    if (!skip) {
      for (const name of ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]) {
        weights.skip(`${key}.resConfUnit1.${name}`, "the deepest fusion block has no skip input, so DPT never calls its resConfUnit1");
      }
    }
    const refined = residualConvUnit(g, weights, fused, `${key}.resConfUnit2`, features);
    const upsampled = bilinearAlignCorners(g, refined, size[0], size[1]);
    return conv2d(g, weights, upsampled, `${key}.out_conv`, [features, features, 1, 1]);
  });
}

function staticSpatial(x: Value): [number, number] {
  const [, , h, w] = x.shape ?? [];
  if (typeof h !== "number" || typeof w !== "number") throw new RangeError(`expected a static [1, C, h, w] tensor, got ${x.shape}`);
  return [h, w];
}

/**
 * The DPT neck on four [patches, inChannels] token maps of a gridHeight x gridWidth patch grid:
 * projections, resize layers, `scratch.layerN_rn` and the four fusion blocks. Returns `path_1`,
 * [1, features, 8 * gridHeight, 8 * gridWidth], which the output convolutions read. Call it
 * inside the head's scope.
 */
export function dptNeck(
  g: Graph,
  weights: Weights,
  features: readonly Value[],
  dims: DptNeckDims,
  grid: { height: number; width: number },
  prefix: string,
): Value {
  const { inChannels, outChannels, features: width } = dims;
  const layers = features.map((tokens, i) =>
    g.scoped(`level${i + 1}`, () => {
      const map = g.reshape(g.transpose(tokens, [1, 0]), [1, inChannels, grid.height, grid.width]);
      const projected = conv2d(g, weights, map, `${prefix}projects.${i}`, [outChannels[i], inChannels, 1, 1]);
      const channels = outChannels[i];
      const resized =
        i === 0 ? convTranspose2d(g, weights, projected, `${prefix}resize_layers.0`, channels, 4)
        : i === 1 ? convTranspose2d(g, weights, projected, `${prefix}resize_layers.1`, channels, 2)
        : i === 2 ? projected
        : conv2d(g, weights, projected, `${prefix}resize_layers.3`, [channels, channels, 3, 3], { stride: 2, padding: 1 });
      return conv2d(g, weights, resized, `${prefix}scratch.layer${i + 1}_rn`, [width, channels, 3, 3], { padding: 1, bias: false });
    }),
  );
  return fuseDptLevels(g, weights, layers, `${prefix}scratch`, width);
}

/**
 * The fusion half of every DPT (Depth Anything's and MiDaS's alike): the four `layerN_rn` maps,
 * finest first, through `refinenet4` … `refinenet1` under `scratch`, each upsampled to the next
 * finer map's size and the last by 2. Returns `path_1`, [1, features, 2 * h1, 2 * w1].
 */
export function fuseDptLevels(g: Graph, weights: Weights, layers: readonly Value[], scratch: string, width: number): Value {
  const path4 = featureFusionBlock(g, weights, layers[3], undefined, `${scratch}.refinenet4`, width, staticSpatial(layers[2]));
  const path3 = featureFusionBlock(g, weights, path4, layers[2], `${scratch}.refinenet3`, width, staticSpatial(layers[1]));
  const path2 = featureFusionBlock(g, weights, path3, layers[1], `${scratch}.refinenet2`, width, staticSpatial(layers[0]));
  const [h1, w1] = staticSpatial(layers[0]);
  return featureFusionBlock(g, weights, path2, layers[0], `${scratch}.refinenet1`, width, [2 * h1, 2 * w1]);
}

/**
 * The DPT head on four [patches, inChannels] token maps of a gridHeight x gridWidth patch grid:
 * returns the [1, 1, gridHeight * patchSize, gridWidth * patchSize] depth logits.
 */
export function dptHead(
  g: Graph,
  weights: Weights,
  features: readonly Value[],
  dims: DptDims,
  grid: { height: number; width: number; patchSize: number },
  options: DptHeadOptions,
): Value {
  return g.scoped(options.prefix.replace(/\.$/, ""), () => {
    const { prefix, finalRelu } = options;
    const { features: width, headFeatures2 } = dims;
    const path1 = dptNeck(g, weights, features, dims, grid, prefix);
    const scratch = `${prefix}scratch`;
    return g.scoped("output", () => {
      const half = Math.floor(width / 2);
      const reduced = conv2d(g, weights, path1, `${scratch}.output_conv1`, [half, width, 3, 3], { padding: 1 });
      const upsampled = bilinearAlignCorners(g, reduced, grid.height * grid.patchSize, grid.width * grid.patchSize);
      const hidden = g.relu(conv2d(g, weights, upsampled, `${scratch}.output_conv2.0`, [headFeatures2, half, 3, 3], { padding: 1 }));
      const logits = conv2d(g, weights, hidden, `${scratch}.output_conv2.2`, [1, headFeatures2, 1, 1]);
      return finalRelu ? g.relu(logits) : logits;
    });
  });
}
