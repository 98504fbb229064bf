/**
 * Depth Anything v1 and v2 as the EndoSynth wrapper runs them (`DAv1`, `DAv2` in
 * `endosynth/models.py`): one whole-contract graph, uint8 frame in, metres out.
 *
 * - v1 (`DPT_DINOv2`): the head reads the LAST 4 blocks (`get_intermediate_layers(x, 4)`), its
 *   output_conv2 ends in a ReLU (then an identity resize and another ReLU, both no-ops after it);
 *   metres = `0.3 * sigmoid(-log(relu(raw) + 1e-5))`.
 * - v2 (`DepthAnythingV2`): the head reads blocks [2, 5, 8, 11] (ViT-S/B; [4, 11, 17, 23] for
 *   ViT-L, [9, 19, 29, 39] for ViT-g); the wrapper removed output_conv2's final ReLU;
 *   metres = `0.3 * sigmoid(raw)`.
 * @module
 */
import { CheckpointError } from "../errors.js";
import type { Graph, Value } from "../onnx/graph.js";
import { dinov2Features, readViTDims, type ViTDims } from "./blocks/dinov2.js";
import { assertNeckFitsEncoder, dptHead, readDptDims } from "./blocks/dpt.js";
import { depthAnythingV1Metres, depthAnythingV2Metres, depthOutput, resizeToInput } from "./blocks/postprocess.js";
import { imageInput, preprocess, type ChannelOrder, type Normalisation } from "./blocks/preprocess.js";
import type { Weights } from "./weights.js";

/** Which Depth Anything. */
export type DepthAnythingVersion = "v1" | "v2";

/** Key prefixes of both versions' state dicts. */
export const ENCODER_PREFIX = "pretrained.";
export const HEAD_PREFIX = "depth_head.";

/** Stage outputs a test can ask for besides `depth` (the contract has only `depth`). */
export type StageOutput = "preprocessed" | "raw";

/** What a model graph is built for. */
export interface BuildOptions {
  /** Network input size (after the pre-processing resize). */
  height: number;
  width: number;
  normalisation: Normalisation;
  channelOrder: ChannelOrder;
  /**
   * Extra graph outputs for stage-by-stage validation: `preprocessed` (the network input,
   * [1, 3, height, width]) and `raw` (the network output before the activation, [1, 1, height, width]).
   * Never set in converted models.
   */
  stageOutputs?: readonly StageOutput[];
}

/** Depth Anything v2's hook blocks per encoder depth (ViT-S/B 12, ViT-L 24, ViT-g 40). */
const V2_HOOK_BLOCKS: Readonly<Record<number, readonly number[]>> = {
  12: [2, 5, 8, 11],
  24: [4, 11, 17, 23],
  40: [9, 19, 29, 39],
};

/** The blocks the head reads, for a version and an encoder depth. */
export function hookBlocks(version: DepthAnythingVersion, dims: ViTDims): readonly number[] {
  if (version === "v1") return [0, 1, 2, 3].map((i) => dims.depth - 4 + i);
  const blocks = V2_HOOK_BLOCKS[dims.depth];
  if (!blocks) {
    throw new CheckpointError(
      `Depth Anything v2 has encoders of 12, 24 or 40 blocks; this checkpoint has ${dims.depth} (${ENCODER_PREFIX}blocks.*)`,
      { key: `${ENCODER_PREFIX}blocks.0.norm1.weight` },
    );
  }
  return blocks;
}

/**
 * The network alone: the normalised [1, 3, height, width] image → the head's [1, 1, height, width]
 * output before the wrapper's activation (`output_raw.npy`). Benchmarks time it on its own.
 */
export function depthAnythingNetwork(g: Graph, weights: Weights, version: DepthAnythingVersion, image: Value, height: number, width: number): Value {
  const vit = readViTDims(weights, { prefix: ENCODER_PREFIX });
  const head = readDptDims(weights, HEAD_PREFIX);
  assertNeckFitsEncoder(head, HEAD_PREFIX, vit.embedDim);
  const grid = { height: height / vit.patchSize, width: width / vit.patchSize, patchSize: vit.patchSize };
  if (!Number.isInteger(grid.height) || !Number.isInteger(grid.width)) {
    throw new RangeError(`the network input ${height}x${width} is not a multiple of the patch size ${vit.patchSize}`);
  }
  const features = dinov2Features(g, weights, image, { prefix: ENCODER_PREFIX }, vit, grid.height, grid.width, hookBlocks(version, vit));
  return dptHead(g, weights, features.map((f) => f.tokens), head, grid, { prefix: HEAD_PREFIX, finalRelu: version === "v1" });
}

/** Builds the whole inference graph of Depth Anything `version` from `weights` into `g`. */
export function buildDepthAnything(g: Graph, weights: Weights, version: DepthAnythingVersion, options: BuildOptions): void {
  const frame = imageInput(g);
  const image = preprocess(g, frame, options);
  const raw = depthAnythingNetwork(g, weights, version, image, options.height, options.width);
  g.markStage("raw", raw);
  const metres = version === "v1" ? depthAnythingV1Metres(g, raw) : depthAnythingV2Metres(g, raw);
  depthOutput(g, resizeToInput(g, metres, frame));

  const stages: Record<StageOutput, Value> = { preprocessed: image, raw };
  for (const stage of options.stageOutputs ?? []) g.output(stages[stage], stage);
}
