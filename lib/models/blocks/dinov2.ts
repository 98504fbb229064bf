/**
 * The DINOv2 ViT encoder as an ONNX subgraph (DINOv2 as shipped with Depth Anything v1's torch hub
 * copy and with Depth Anything v2, which compute the same function): patch embedding, class token,
 * position embedding interpolated to the input's patch grid at conversion time, pre-norm blocks
 * with LayerScale, and `get_intermediate_layers` (the final norm applied to the chosen blocks).
 *
 * Every dimension is read from the checkpoint's shapes; heads = embed_dim / 64. Tokens are kept as
 * a 2-D [tokens, dim] matrix (batch 1), so every Linear is one Gemm on the stored weights, no copy.
 * @module
 */
import { CheckpointError } from "../../errors.js";
import type { Graph, Value } from "../../onnx/graph.js";
import { interpolatePosEmbed, scaledSize } from "./pos_embed.js";
import type { Weights } from "../weights.js";

/** DINOv2's LayerNorm epsilon. */
export const DINOV2_LAYER_NORM_EPSILON = 1e-6;
/** Every DINOv2 size uses 64-dimensional attention heads. */
export const HEAD_DIM = 64;

/** The encoder's dimensions, as read from a checkpoint. */
export interface ViTDims {
  /** Token width (768 for ViT-B). */
  embedDim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads, `embedDim / 64`. */
  heads: number;
  /** Hidden width of the MLPs. */
  mlpHidden: number;
  /** Patch size in pixels (14). */
  patchSize: number;
  /** Side of the square grid the position embedding was trained on (37 for 518 px). */
  posGrid: number;
}

/** Where a checkpoint keeps its encoder, e.g. `"pretrained."`. */
export interface ViTKeys {
  prefix: string;
}

/** The output of one chosen block: its patch tokens after the final norm, [patches, dim]. */
export interface ViTFeatures {
  /** Index of the block. */
  block: number;
  /** Normalised patch tokens (class token dropped), row-major over the patch grid. */
  tokens: Value;
}

/**
 * Reads the encoder's dimensions from the checkpoint's shapes.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when the keys that define them are missing or inconsistent.
 */
export function readViTDims(weights: Weights, { prefix }: ViTKeys): ViTDims {
  const [, , embedDim] = weights.dimensions(`${prefix}cls_token`, 3, "a DINOv2 encoder");
  const [, posTokens] = weights.dimensions(`${prefix}pos_embed`, 3, "a DINOv2 encoder");
  const [, , patchSize] = weights.dimensions(`${prefix}patch_embed.proj.weight`, 4, "a DINOv2 encoder");
  const [mlpHidden] = weights.dimensions(`${prefix}blocks.0.mlp.fc1.weight`, 2, "a DINOv2 encoder");
  const posGrid = Math.round(Math.sqrt(posTokens - 1));
  if (posGrid * posGrid !== posTokens - 1) {
    throw new CheckpointError(`${prefix}pos_embed has ${posTokens} tokens, not 1 + a square grid`, { key: `${prefix}pos_embed` });
  }
  if (embedDim % HEAD_DIM !== 0) {
    throw new CheckpointError(`${prefix}cls_token has width ${embedDim}, not a multiple of the head size ${HEAD_DIM}`, { key: `${prefix}cls_token` });
  }
  return { embedDim, depth: weights.countBlocks(prefix), heads: embedDim / HEAD_DIM, mlpHidden, patchSize, posGrid };
}

/** `x @ W^T + b` for a PyTorch Linear stored under `key` (weight [out, in]). */
export function linear(g: Graph, weights: Weights, x: Value, key: string, outFeatures: number, inFeatures: number): Value {
  const weight = weights.value(g, `${key}.weight`, [outFeatures, inFeatures]);
  const bias = weights.value(g, `${key}.bias`, [outFeatures]);
  return g.gemm(x, weight, bias, { transB: true });
}

/** LayerNorm with DINOv2's epsilon over the last axis. */
export function layerNorm(g: Graph, weights: Weights, x: Value, key: string, dim: number, epsilon = DINOV2_LAYER_NORM_EPSILON): Value {
  return g.layerNormalization(x, weights.value(g, `${key}.weight`, [dim]), weights.value(g, `${key}.bias`, [dim]), epsilon);
}

/**
 * Multi-head self-attention of DINOv2 (`Attention.forward`): the fused qkv projection is split
 * into three Gemms on row views of the weight, `q * head_dim^-0.5`, softmax(q kᵀ) v, projection.
 */
export function attention(g: Graph, weights: Weights, x: Value, key: string, dims: ViTDims): Value {
  return g.scoped("attn", () => {
    const { embedDim: dim, heads } = dims;
    const qkvShape = [3 * dim, dim];
    const project = (part: number): Value => {
      const weight = weights.rows(g, `${key}.qkv.weight`, qkvShape, part * dim, (part + 1) * dim);
      const bias = weights.rows(g, `${key}.qkv.bias`, [3 * dim], part * dim, (part + 1) * dim);
      return g.reshape(g.gemm(x, weight, bias, { transB: true }), [-1, heads, HEAD_DIM]);
    };
    const q = g.mul(g.transpose(project(0), [1, 0, 2]), HEAD_DIM ** -0.5);
    const kT = g.transpose(project(1), [1, 2, 0]);
    const v = g.transpose(project(2), [1, 0, 2]);
    const probabilities = g.softmax(g.matMul(q, kT), -1);
    const context = g.reshape(g.transpose(g.matMul(probabilities, v), [1, 0, 2]), [-1, dim]);
    return linear(g, weights, context, `${key}.proj`, dim, dim);
  });
}

/**
 * How a DINOv2-based model departs from the plain encoder (EndoDAC: DV-LoRA folded into the MLP
 * weights, convolutional residual blocks after some blocks). Every hook is optional; none means
 * plain DINOv2.
 */
export interface ViTVariant {
  /**
   * The [out, in] weight of the MLP Linear stored under `key` (e.g. `pretrained.blocks.3.mlp.fc1`);
   * default: the stored `${key}.weight`. Its bias is always the stored `${key}.bias`.
   */
  mlpWeight?: (g: Graph, weights: Weights, key: string, outFeatures: number, inFeatures: number) => Value;
  /** Applied to block `block`'s output tokens [1 + patches, dim]; returns the tokens that follow it. */
  afterBlock?: (g: Graph, weights: Weights, x: Value, block: number) => Value;
}

/** The ViT Mlp of DINOv2 and timm's BEiT: fc1, exact GELU, fc2. */
export function mlp(g: Graph, weights: Weights, x: Value, key: string, dims: Pick<ViTDims, "embedDim" | "mlpHidden">, variant: ViTVariant = {}): Value {
  return g.scoped("mlp", () => {
    const fc = (input: Value, name: string, outFeatures: number, inFeatures: number): Value => {
      if (!variant.mlpWeight) return linear(g, weights, input, `${key}.${name}`, outFeatures, inFeatures);
      const weight = variant.mlpWeight(g, weights, `${key}.${name}`, outFeatures, inFeatures);
      return g.gemm(input, weight, weights.value(g, `${key}.${name}.bias`, [outFeatures]), { transB: true });
    };
    const hidden = g.gelu(fc(x, "fc1", dims.mlpHidden, dims.embedDim));
    return fc(hidden, "fc2", dims.embedDim, dims.mlpHidden);
  });
}

/** `x * gamma` (LayerScale). */
export function layerScale(g: Graph, weights: Weights, x: Value, key: string, dim: number): Value {
  return g.mul(x, weights.value(g, `${key}.gamma`, [dim]));
}

/** One pre-norm block: `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`. */
export function vitBlock(g: Graph, weights: Weights, x: Value, key: string, dims: ViTDims, variant: ViTVariant = {}): Value {
  const dim = dims.embedDim;
  const attended = g.add(x, layerScale(g, weights, attention(g, weights, layerNorm(g, weights, x, `${key}.norm1`, dim), `${key}.attn`, dims), `${key}.ls1`, dim));
  return g.add(attended, layerScale(g, weights, mlp(g, weights, layerNorm(g, weights, attended, `${key}.norm2`, dim), `${key}.mlp`, dims, variant), `${key}.ls2`, dim));
}

/**
 * Patch embedding + class token + position embedding: [1, 3, H, W] image → [1 + patches, dim]
 * tokens, the position table interpolated now for the (H / patch) x (W / patch) grid.
 */
export function embedTokens(g: Graph, weights: Weights, image: Value, { prefix }: ViTKeys, dims: ViTDims, gridHeight: number, gridWidth: number): Value {
  return g.scoped("embed", () => {
    const dim = dims.embedDim;
    const patchWeight = weights.value(g, `${prefix}patch_embed.proj.weight`, [dim, 3, dims.patchSize, dims.patchSize]);
    const patchBias = weights.value(g, `${prefix}patch_embed.proj.bias`, [dim]);
    const patches = g.conv(image, patchWeight, patchBias, { strides: [dims.patchSize, dims.patchSize] });
    const tokens = g.transpose(g.reshape(patches, [dim, gridHeight * gridWidth]), [1, 0]);

    const grid = dims.posGrid;
    for (const [size, wanted] of [[grid, gridHeight], [grid, gridWidth]]) {
      if (scaledSize(size, (wanted + 0.1) / size) !== wanted) throw new RangeError(`DINOv2 cannot interpolate a ${grid}-grid to ${wanted}`);
    }
    const table = interpolatePosEmbed(weights.tensor(`${prefix}pos_embed`, [1, 1 + grid * grid, dim]), gridHeight, gridWidth);
    const classToken = weights.tensor(`${prefix}cls_token`, [1, 1, dim]);
    // The class token's row of `cat(cls, patches) + pos` is one float32 add: done here.
    const classRow = Float32Array.from({ length: dim }, (_, c) => Math.fround(classToken.data[c] + table.data[c]));
    const classValue = g.initializer({ data: classRow, shape: [1, dim], dtype: "float32" }, `${prefix}cls_token+pos_embed[0]`);
    const patchPositions = g.initializer({ data: table.data.subarray(dim), shape: [gridHeight * gridWidth, dim], dtype: "float32" }, `${prefix}pos_embed@${gridHeight}x${gridWidth}`);
    return g.concat([classValue, g.add(tokens, patchPositions)], 0);
  });
}

/**
 * The encoder up to the last chosen block, returning `get_intermediate_layers(x, blocks, norm=True)`'s
 * patch tokens for each of `blocks`. Blocks after the last chosen one are not built, and their
 * weights are reported as unused. `variant` adapts it to DINOv2-based models such as EndoDAC.
 */
export function dinov2Features(
  g: Graph,
  weights: Weights,
  image: Value,
  keys: ViTKeys,
  dims: ViTDims,
  gridHeight: number,
  gridWidth: number,
  blocks: readonly number[],
  variant: ViTVariant = {},
): ViTFeatures[] {
  return g.scoped(keys.prefix.replace(/\.$/, ""), () => {
    const { prefix } = keys;
    let x = embedTokens(g, weights, image, keys, dims, gridHeight, gridWidth);
    weights.skip(`${prefix}mask_token`, "DINOv2's mask token only replaces masked patches in training");
    const features: ViTFeatures[] = [];
    const last = Math.max(...blocks);
    for (let block = 0; block < dims.depth; block++) {
      const key = `${prefix}blocks.${block}`;
      if (block > last) {
        for (const k of weights.keys().filter((name) => name.startsWith(`${key}.`))) weights.skip(k, `block ${block} comes after the last block the head reads`);
        continue;
      }
      x = g.scoped(`blocks.${block}`, () => {
        const output = vitBlock(g, weights, x, key, dims, variant);
        return variant.afterBlock ? variant.afterBlock(g, weights, output, block) : output;
      });
      if (blocks.includes(block)) {
        const patchTokens = g.slice(x, [1], [1 + gridHeight * gridWidth], [0]);
        features.push({ block, tokens: g.scoped(`norm.${block}`, () => layerNorm(g, weights, patchTokens, `${prefix}norm`, dims.embedDim)) });
      }
    }
    return features;
  });
}
