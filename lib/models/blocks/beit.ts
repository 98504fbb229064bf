/**
 * The BEiT encoder of MiDaS v3.1 (timm 0.6.12 `Beit` with MiDaS's `beit.py` patches for input sizes
 * other than the pretraining one) as an ONNX subgraph: a 16x16/16 patch embedding that floors the
 * input to whole patches, the class token, no absolute position embedding, and pre-norm blocks with
 * a relative position bias per block, q and v biases (k has none), LayerScale `gamma_1`/`gamma_2`,
 * LayerNorm eps 1e-6 and exact GELU.
 *
 * Every dimension is read from the checkpoint's shapes. Tokens are a 2-D [tokens, dim] matrix
 * (batch 1), so every Linear is a Gemm on the stored weight (no transposed copy).
 *
 * The relative position bias of the patch grid is [heads, tokens, tokens] per block (92 MB for
 * BEiT-L at 26x46): rather than storing 24 of those (2.2 GB), the graph keeps each block's resized
 * [rows, heads] table (300 KB, {@link resizeRelativePositionTable}) and one shared int32 index, and
 * gathers the bias at run time.
 * @module
 */
import { CheckpointError } from "../../errors.js";
import type { Graph, Value } from "../../onnx/graph.js";
import { layerNorm, linear, mlp } from "./dinov2.js";
import { CLASS_TOKEN_ROWS, relativePositionIndex, resizeRelativePositionTable, tableRows, type Grid } from "./relative_position.js";
import type { Weights } from "../weights.js";

/** BEiT's LayerNorm epsilon. */
export const BEIT_LAYER_NORM_EPSILON = 1e-6;

/** The encoder's dimensions, as read from a checkpoint. */
export interface BeitDims {
  /** Token width (1024 for BEiT-L). */
  embedDim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads (the relative position table's columns). */
  heads: number;
  /** Width of one head, `embedDim / heads`. */
  headDim: number;
  /** Hidden width of the MLPs. */
  mlpHidden: number;
  /** Patch size in pixels (16). */
  patchSize: number;
  /** The attention window the relative position tables were trained for (32x32 for 512 px). */
  window: Grid;
}

/** The square window whose table has `rows` rows, `(2w - 1)^2 + 3`, or undefined. */
function squareWindow(rows: number): Grid | undefined {
  const span = Math.round(Math.sqrt(rows - CLASS_TOKEN_ROWS));
  if (span * span !== rows - CLASS_TOKEN_ROWS || span % 2 !== 1) return undefined;
  return { height: (span + 1) / 2, width: (span + 1) / 2 };
}

/**
 * Reads the encoder's dimensions from the checkpoint's shapes.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when the keys that define them are missing or inconsistent.
 */
export function readBeitDims(weights: Weights, prefix: string): BeitDims {
  const [, , embedDim] = weights.dimensions(`${prefix}cls_token`, 3, "a BEiT encoder");
  const [, , patchSize] = weights.dimensions(`${prefix}patch_embed.proj.weight`, 4, "a BEiT encoder");
  const [mlpHidden] = weights.dimensions(`${prefix}blocks.0.mlp.fc1.weight`, 2, "a BEiT encoder");
  const tableKey = `${prefix}blocks.0.attn.relative_position_bias_table`;
  const [rows, heads] = weights.dimensions(tableKey, 2, "a BEiT encoder");
  const window = squareWindow(rows);
  if (!window) {
    throw new CheckpointError(`${tableKey} has ${rows} rows, not (2w - 1)^2 + 3 for a square attention window`, { key: tableKey });
  }
  if (embedDim % heads !== 0) {
    throw new CheckpointError(`${prefix}cls_token has width ${embedDim}, not a multiple of the ${heads} heads of ${tableKey}`, { key: tableKey });
  }
  return { embedDim, depth: weights.countBlocks(prefix), heads, headDim: embedDim / heads, mlpHidden, patchSize, window };
}

/** The patch grid a `height` x `width` input gives: the patch embedding floors, the leftover rows and columns are never seen. */
export function beitGrid(dims: BeitDims, height: number, width: number): Grid {
  return { height: Math.floor(height / dims.patchSize), width: Math.floor(width / dims.patchSize) };
}

/**
 * Patch embedding + class token: [1, 3, H, W] image → [1 + patches, dim] tokens. The stride-16
 * convolution floors the input to whole patches (MiDaS does not pad).
 */
export function embedPatches(g: Graph, weights: Weights, image: Value, prefix: string, dims: BeitDims, grid: Grid): Value {
  return g.scoped("embed", () => {
    const { embedDim: dim, patchSize } = dims;
    const patchWeight = weights.value(g, `${prefix}patch_embed.proj.weight`, [dim, 3, patchSize, patchSize]);
    const patchBias = weights.value(g, `${prefix}patch_embed.proj.bias`, [dim]);
    const patches = g.conv(image, patchWeight, patchBias, { strides: [patchSize, patchSize] });
    const tokens = g.transpose(g.reshape(patches, [dim, grid.height * grid.width]), [1, 0]);
    const classToken = weights.tensor(`${prefix}cls_token`, [1, 1, dim]);
    const classRow = g.initializer({ data: classToken.data, shape: [1, dim], dtype: "float32" }, `${prefix}cls_token`);
    return g.concat([classRow, tokens], 0);
  });
}

/**
 * BEiT's attention with MiDaS's relative position bias for `grid`: q, k, v from row views of the
 * fused qkv weight (q and v with their biases; timm's k bias is a zero buffer), `q * head_dim^-0.5`,
 * softmax(q kᵀ + bias) v, projection. `index` is {@link relativePositionIndex} of the grid.
 */
export function beitAttention(g: Graph, weights: Weights, x: Value, key: string, dims: BeitDims, grid: Grid, index: Value): Value {
  return g.scoped("attn", () => {
    const { embedDim: dim, heads, headDim } = dims;
    const qkvShape = [3 * dim, dim];
    const project = (part: number, bias: Value | undefined): Value => {
      const weight = weights.rows(g, `${key}.qkv.weight`, qkvShape, part * dim, (part + 1) * dim);
      return g.reshape(g.gemm(x, weight, bias, { transB: true }), [-1, heads, headDim]);
    };
    const q = g.mul(g.transpose(project(0, weights.value(g, `${key}.q_bias`, [dim])), [1, 0, 2]), headDim ** -0.5);
    const kT = g.transpose(project(1, undefined), [1, 2, 0]);
    const v = g.transpose(project(2, weights.value(g, `${key}.v_bias`, [dim])), [1, 0, 2]);

    const tableKey = `${key}.relative_position_bias_table`;
    const learned = weights.tensor(tableKey, [tableRows(dims.window), heads]);
    const resized = learned.data.length > 0 ? resizeRelativePositionTable(learned, dims.window, grid) : learned;
    const table = g.initializer({ ...resized, shape: [resized.data.length / heads, heads] }, `${tableKey}@${grid.height}x${grid.width}`);
    // Gathering whole rows (one per head group) and transposing is 5x faster in ONNX Runtime than
    // gathering single floats from a [heads, rows] table.
    const bias = g.transpose(g.gather(table, index, 0), [2, 0, 1]);

    const probabilities = g.softmax(g.add(g.matMul(q, kT), bias), -1);
    const context = g.reshape(g.transpose(g.matMul(probabilities, v), [1, 0, 2]), [-1, dim]);
    return linear(g, weights, context, `${key}.proj`, dim, dim);
  });
}

/** One block: `x + gamma_1 * attn(norm1(x))`, then `x + gamma_2 * mlp(norm2(x))`. */
export function beitBlock(g: Graph, weights: Weights, x: Value, key: string, dims: BeitDims, grid: Grid, index: Value): Value {
  const dim = dims.embedDim;
  const norm = (input: Value, name: string): Value => layerNorm(g, weights, input, `${key}.${name}`, dim, BEIT_LAYER_NORM_EPSILON);
  const gamma = (name: string): Value => weights.value(g, `${key}.${name}`, [dim]);
  const attended = g.add(x, g.mul(gamma("gamma_1"), beitAttention(g, weights, norm(x, "norm1"), `${key}.attn`, dims, grid, index)));
  return g.add(attended, g.mul(gamma("gamma_2"), mlp(g, weights, norm(attended, "norm2"), `${key}.mlp`, dims)));
}

/**
 * The encoder up to the last of `blocks`, returning each chosen block's output tokens
 * [1 + patches, dim] (class token first), as MiDaS's forward hooks record them: before the final
 * norm. Blocks after the last chosen one are not built and their weights are reported as unused,
 * as are the classifier's (`fc_norm`, `head`, `norm`) and any stored `relative_position_index`
 * (the index is regenerated for the grid).
 */
export function beitFeatures(g: Graph, weights: Weights, image: Value, prefix: string, dims: BeitDims, grid: Grid, blocks: readonly number[]): Value[] {
  return g.scoped(prefix.replace(/\.$/, ""), () => {
    let x = embedPatches(g, weights, image, prefix, dims, grid);
    const index = g.initializer(relativePositionIndex(grid), `relative_position_index@${grid.height}x${grid.width}`);
    const features: Value[] = [];
    const last = Math.max(...blocks);
    for (let block = 0; block < dims.depth; block++) {
      const key = `${prefix}blocks.${block}`;
      const storedIndex = `${key}.attn.relative_position_index`;
      if (weights.has(storedIndex)) {
        weights.skip(storedIndex, `the index of the ${dims.window.height}x${dims.window.width} pretraining window; MiDaS regenerates it for the ${grid.height}x${grid.width} patch grid (the wrapper deletes it)`);
      }
      if (block > last) {
        for (const k of weights.keys().filter((name) => name.startsWith(`${key}.`))) weights.skip(k, `block ${block} comes after the last block MiDaS reads`);
        continue;
      }
      x = g.scoped(`blocks.${block}`, () => beitBlock(g, weights, x, key, dims, grid, index));
      if (blocks.includes(block)) features.push(x);
    }
    for (const key of weights.keys().filter((k) => /^(fc_norm|head|norm)\./.test(k.slice(prefix.length)) && k.startsWith(prefix))) {
      weights.skip(key, "BEiT's ImageNet classifier (pooled norm and head); MiDaS reads block outputs before it");
    }
    return features;
  });
}
