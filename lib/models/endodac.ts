/**
 * EndoDAC as the EndoSynth wrapper runs it (`EndoDAC` in `endosynth/models.py`, building the EndoDAC
 * repository's `endodac(backbone_size="base", r=4, lora_type="dvlora", image_shape=(224, 280),
 * residual_block_indexes=[2, 5, 8, 11], include_cls_token=True)`): one whole-contract graph,
 * uint8 frame in, metres out.
 *
 * - Pre-processing as Depth Anything's (cubic to 420x742, ImageNet normalisation), then the
 *   model's own `F.interpolate(x, (224, 280), mode="bilinear", align_corners=True)`: a 16x20 grid.
 * - A DINOv2 ViT-B/14 (D's {@link dinov2Features}) whose MLP Linears are DV-LoRA layers, folded
 *   into plain weights here ({@link foldDvLora}), and whose blocks 2, 5, 8, 11 are followed by a
 *   convolutional bottleneck (`ResBottleneckBlock`) added to the patch tokens only.
 * - `get_intermediate_layers(x, 4)`: the LAST 4 blocks (the `intermediate_layers` table [2, 5, 8, 11]
 *   of `endodac.__init__` is never used), final norm, class token dropped (`use_clstoken=False`).
 * - The DPT neck, then `conv_depth_1` (conv, 2x bilinear, conv, ReLU, 1x1 conv) and a sigmoid:
 *   the 256x320 disparity `("disp", 0)`. The decoder's coarser disparities 1-3 are never read.
 * - Bilinear (align_corners) to the frame size, then `1 / (1/0.3 + (1/0.001 - 1/0.3) * disp)`.
 *
 * The wrapper's `load()` keeps only the checkpoint keys the model has
 * (`{k: v for k, v in ckpt.items() if k in state_dict}`) and loads those strictly: extra keys are
 * reported as unused, missing ones are errors.
 * @module
 */
import type { Graph, Value } from "../onnx/graph.js";
import type { BuildOptions, StageOutput } from "./depth_anything.js";
import { dinov2Features, layerNorm, readViTDims, type ViTDims, type ViTVariant } from "./blocks/dinov2.js";
import { assertNeckFitsEncoder, bilinearAlignCorners, conv2d, dptNeck, readDptNeckDims } from "./blocks/dpt.js";
import { foldDvLora } from "./blocks/dvlora.js";
import { depthOutput, disparityToMetres, resizeToInput } from "./blocks/postprocess.js";
import { imageInput, preprocess } from "./blocks/preprocess.js";
import type { Weights } from "./weights.js";

/** Key prefix of the encoder in EndoDAC's state dict. */
export const ENDODAC_ENCODER_PREFIX = "encoder.";
/** Key prefix of the decoder in EndoDAC's state dict. */
export const ENDODAC_HEAD_PREFIX = "depth_head.";

/** EndoDAC's `image_shape`: the network input is resized to it before the encoder. */
export const ENDODAC_IMAGE_SHAPE = { height: 224, width: 280 } as const;

/** The DV-LoRA rank (the wrapper's `r`); `lora_alpha` is the same, so the scaling is 1. */
export const ENDODAC_LORA_RANK = 4;

/** The blocks followed by a residual bottleneck (the wrapper's `residual_block_indexes`). */
export const ENDODAC_RESIDUAL_BLOCKS: readonly number[] = [2, 5, 8, 11];

/** `HeadDepth`'s fixed hidden width. */
const HEAD_DEPTH_HIDDEN = 32;

/** Why the wrapper's `load()` drops a key. */
const DROPPED_BY_WRAPPER = "not a parameter of the EndoDAC model the reference wrapper builds: its load() drops it";

/** The `x @ Wᵀ` of a bias-free 1x1 Conv2d stored [out, in, 1, 1], applied to [tokens, in] rows. */
function pointwiseConv(g: Graph, weights: Weights, x: Value, key: string, outChannels: number, inChannels: number): Value {
  const stored = weights.tensor(`${key}.weight`, [outChannels, inChannels, 1, 1]);
  const matrix = g.initializer({ data: stored.data, shape: [outChannels, inChannels], dtype: "float32" }, `${key}.weight`);
  return g.gemm(x, matrix, undefined, { transB: true });
}

/**
 * `ResBottleneckBlock` (1x1 conv, LayerNorm over channels, GELU, 3x3 conv, LayerNorm, GELU,
 * 1x1 conv, LayerNorm; no biases, eps 1e-6) on the patch tokens of `tokens` [1 + patches, dim],
 * added to them; the class token passes unchanged, as `Block.forward` updates `x[:, 1:]` only.
 * The 1x1 convolutions and the channel LayerNorms run on the token rows directly; only the 3x3
 * convolution needs the [1, C, h, w] map.
 */
export function residualBottleneck(
  g: Graph,
  weights: Weights,
  tokens: Value,
  key: string,
  dim: number,
  grid: { height: number; width: number },
): Value {
  return g.scoped("residual_", () => {
    const patches = grid.height * grid.width;
    const bottleneck = Math.floor(dim / 8);
    const classToken = g.slice(tokens, [0], [1], [0]);
    const patchTokens = g.slice(tokens, [1], [1 + patches], [0]);

    const reduced = g.gelu(layerNorm(g, weights, pointwiseConv(g, weights, patchTokens, `${key}.conv1`, bottleneck, dim), `${key}.norm1`, bottleneck));
    const map = g.reshape(g.transpose(reduced, [1, 0]), [1, bottleneck, grid.height, grid.width]);
    const spatial = conv2d(g, weights, map, `${key}.conv2`, [bottleneck, bottleneck, 3, 3], { padding: 1, bias: false });
    const mixed = g.gelu(layerNorm(g, weights, g.transpose(g.reshape(spatial, [bottleneck, patches]), [1, 0]), `${key}.norm2`, bottleneck));
    const expanded = layerNorm(g, weights, pointwiseConv(g, weights, mixed, `${key}.conv3`, dim, bottleneck), `${key}.norm3`, dim);
    return g.concat([classToken, g.add(patchTokens, expanded)], 0);
  });
}

/** The MLP weight of a `DVLinear` under `key`, folded (see {@link foldDvLora}). */
function dvLoraWeight(g: Graph, weights: Weights, key: string, outFeatures: number, inFeatures: number): Value {
  const rank = ENDODAC_LORA_RANK;
  const weight = weights.tensor(`${key}.weight`, [outFeatures, inFeatures]);
  const loraA = weights.tensor(`${key}.lora_A`, [rank, inFeatures]);
  const loraB = weights.tensor(`${key}.lora_B`, [outFeatures, rank]);
  const loraU = weights.tensor(`${key}.lora_U`, [rank, 1]);
  const loraV = weights.tensor(`${key}.lora_V`, [outFeatures, 1]);
  // A missing or misshapen tensor comes back empty and is already recorded (Weights.finish reports
  // it): keep building to find every other problem too.
  const complete = [weight, loraA, loraB, loraU, loraV].every((t) => t.data.length > 0);
  // endodac() builds DVLinear(..., r=r, lora_alpha=r): scaling = alpha / r = 1.
  const folded = complete ? foldDvLora({ weight, loraA, loraB, loraU, loraV }, 1) : weight;
  return g.initializer(folded, `${key}.weight+dvlora`);
}

/** The encoder's departures from DINOv2 for a grid of the given size. */
export function endoDacVariant(dims: ViTDims, grid: { height: number; width: number }): ViTVariant {
  return {
    mlpWeight: dvLoraWeight,
    afterBlock: (g, weights, x, block) =>
      ENDODAC_RESIDUAL_BLOCKS.includes(block)
        ? residualBottleneck(g, weights, x, `${ENDODAC_ENCODER_PREFIX}blocks.${block}.residual_`, dims.embedDim, grid)
        : x,
  };
}

/**
 * `HeadDepth` followed by the decoder's sigmoid: conv 3x3 (features → features/2), bilinear 2x
 * (align_corners), conv 3x3 (→ 32), ReLU, conv 1x1 (→ 1), sigmoid. [1, 1, 2h, 2w] disparity.
 */
export function headDepth(g: Graph, weights: Weights, path: Value, key: string, features: number): Value {
  return g.scoped(key.split(".").pop()!, () => {
    const half = Math.floor(features / 2);
    const reduced = conv2d(g, weights, path, `${key}.head.0`, [half, features, 3, 3], { padding: 1 });
    const [, , height, width] = reduced.shape as number[];
    const upsampled = bilinearAlignCorners(g, reduced, 2 * height, 2 * width);
    const hidden = g.relu(conv2d(g, weights, upsampled, `${key}.head.2`, [HEAD_DEPTH_HIDDEN, half, 3, 3], { padding: 1 }));
    return g.sigmoid(conv2d(g, weights, hidden, `${key}.head.4`, [1, HEAD_DEPTH_HIDDEN, 1, 1]));
  });
}

/** Marks the decoder's unread outputs (`("disp", 1..3)`) as unused. */
function skipCoarseDisparities(weights: Weights): void {
  for (const level of [2, 3, 4]) {
    for (const layer of [0, 2, 4]) {
      for (const name of ["weight", "bias"]) {
        weights.skip(`${ENDODAC_HEAD_PREFIX}conv_depth_${level}.head.${layer}.${name}`, `conv_depth_${level} predicts ("disp", ${level - 1}); inference reads only ("disp", 0)`);
      }
    }
  }
}

/** Builds EndoDAC's whole inference graph from `weights` into `g`. */
export function buildEndoDac(g: Graph, weights: Weights, options: BuildOptions): void {
  const frame = imageInput(g);
  const image = preprocess(g, frame, options);

  const vit = readViTDims(weights, { prefix: ENDODAC_ENCODER_PREFIX });
  const neck = readDptNeckDims(weights, ENDODAC_HEAD_PREFIX);
  assertNeckFitsEncoder(neck, ENDODAC_HEAD_PREFIX, vit.embedDim);
  const { height, width } = ENDODAC_IMAGE_SHAPE;
  const grid = { height: Math.floor(height / vit.patchSize), width: Math.floor(width / vit.patchSize) };
  const resized = g.scoped("image_shape", () => bilinearAlignCorners(g, image, height, width));

  const lastFour = [0, 1, 2, 3].map((i) => vit.depth - 4 + i);
  const features = dinov2Features(g, weights, resized, { prefix: ENDODAC_ENCODER_PREFIX }, vit, grid.height, grid.width, lastFour, endoDacVariant(vit, grid));
  const disparity = g.scoped(ENDODAC_HEAD_PREFIX.replace(/\.$/, ""), () => {
    const path = dptNeck(g, weights, features.map((f) => f.tokens), neck, grid, ENDODAC_HEAD_PREFIX);
    return headDepth(g, weights, path, `${ENDODAC_HEAD_PREFIX}conv_depth_1`, neck.features);
  });
  g.markStage("raw", disparity);
  skipCoarseDisparities(weights);
  for (const key of weights.unaccountedKeys()) weights.skip(key, DROPPED_BY_WRAPPER);

  depthOutput(g, disparityToMetres(g, resizeToInput(g, disparity, frame), 1));
  const stages: Record<StageOutput, Value> = { preprocessed: image, raw: disparity };
  for (const stage of options.stageOutputs ?? []) g.output(stages[stage], stage);
}
