/**
 * MiDaS v3.1 DPT-BEiT-L-512 as the EndoSynth wrapper runs it (`Midas` in `endosynth/models.py`:
 * `DPTDepthModel(backbone="beitl16_512", non_negative=True)`): one whole-contract graph, uint8
 * frame in, metres out.
 *
 * - Pre-processing as every EndoSynth model's (cubic to 420x742, B, G, R for an RGB frame), then
 *   `(x - 0.5) / 0.5` instead of ImageNet's statistics.
 * - The BEiT-L/16 encoder ({@link beitFeatures}) on the 26x46 patch grid the 420x742 input floors
 *   to (rows 416-419 and columns 736-741 are never seen), hooked after blocks 5, 11, 17, 23.
 * - Reassembly per hook (`act_postprocessN`): readout "project" (each patch token concatenated with
 *   the class token → Linear(2 dim, dim) → GELU), unflatten to the grid, 1x1 conv, then a 4x or 2x
 *   transposed conv, nothing, or a stride-2 3x3 conv.
 * - The DPT fusion ({@link fuseDptLevels}, keys `scratch.*`) and MiDaS's head `scratch.output_conv`:
 *   conv 3x3 (features → features/2), bilinear 2x (align_corners), conv 3x3 (→ 32), ReLU, conv 1x1
 *   (→ 1), ReLU: the non-negative [1, 416, 736] disparity `output_raw.npy` holds.
 * - Bilinear (align_corners) to the frame size, then `70000 / (1/0.3 + (1/0.001 - 1/0.3) * disp)`.
 *
 * One deliberate deviation from the reference: the wrapper's `Midas.infer` applies that last formula
 * to the network INPUT `x` instead of the resized output (returning a 3x420x742 array); this graph
 * applies it to the output, as the fixtures' `expected.npy` does.
 * @module
 */
import { CheckpointError } from "../errors.js";
import type { Graph, Value } from "../onnx/graph.js";
import { beitFeatures, beitGrid, readBeitDims, type BeitDims } from "./blocks/beit.js";
import type { BuildOptions, StageOutput } from "./depth_anything.js";
import { linear } from "./blocks/dinov2.js";
import { bilinearAlignCorners, conv2d, convTranspose2d, fuseDptLevels } from "./blocks/dpt.js";
import { depthOutput, disparityToMetres, resizeToInput } from "./blocks/postprocess.js";
import { imageInput, preprocess, type Normalisation } from "./blocks/preprocess.js";
import type { Grid } from "./blocks/relative_position.js";
import type { Weights } from "./weights.js";

/** Key prefix of the BEiT encoder in MiDaS's state dict. */
export const MIDAS_ENCODER_PREFIX = "pretrained.model.";

/** MiDaS's normalisation, `Normalize(0.5, 0.5)` on `x / 255`. */
export const MIDAS_NORMALISATION: Normalisation = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/** The encoder blocks MiDaS's `beitl16_512` backbone hooks (`DPT.__init__`'s table). */
export const MIDAS_HOOK_BLOCKS: readonly number[] = [5, 11, 17, 23];

/** The wrapper's `ALPHA`: its disparity-to-depth conversion is scaled by it. */
export const MIDAS_ALPHA = 70000;

/** The neck's and head's dimensions, as read from a checkpoint. */
export interface MidasHeadDims {
  /** Channels after each hook's 1x1 projection (`act_postprocessN.3`). */
  outChannels: readonly [number, number, number, number];
  /** Width of the fusion path (`features`). */
  features: number;
  /** Width of the head's hidden layer (`head_features_2`, 32). */
  headFeatures2: number;
}

/**
 * Reads the neck's and head's dimensions from the checkpoint's shapes.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when a defining key is missing.
 */
export function readMidasHeadDims(weights: Weights): MidasHeadDims {
  const outChannels = [1, 2, 3, 4].map((level) => weights.dimensions(`pretrained.act_postprocess${level}.3.weight`, 4, "a MiDaS DPT head")[0]);
  return {
    outChannels: outChannels as unknown as MidasHeadDims["outChannels"],
    features: weights.dimensions(`scratch.layer1_rn.weight`, 4, "a MiDaS DPT head")[0],
    headFeatures2: weights.dimensions(`scratch.output_conv.2.weight`, 4, "a MiDaS DPT head")[0],
  };
}

/**
 * `ProjectReadout`: each patch token concatenated with the class token, then
 * `Linear(2 dim, dim)` and GELU. `tokens` is [1 + patches, dim]; returns [patches, dim].
 */
export function projectReadout(g: Graph, weights: Weights, tokens: Value, key: string, dim: number, patches: number): Value {
  return g.scoped("readout", () => {
    const classToken = g.slice(tokens, [0], [1], [0]);
    const patchTokens = g.slice(tokens, [1], [1 + patches], [0]);
    const [readout] = g.node("Expand", [classToken, g.constant([patches, dim], "int64")], {}, [{ dtype: "float32", shape: [patches, dim] }]);
    return g.gelu(linear(g, weights, g.concat([patchTokens, readout], 1), `${key}.project.0`, dim, 2 * dim));
  });
}

/**
 * `act_postprocess{level}` after the readout: the [patches, dim] tokens unflattened to the grid,
 * the 1x1 projection, then level 1: ConvTranspose 4x4/4, level 2: ConvTranspose 2x2/2, level 3:
 * nothing, level 4: conv 3x3 stride 2.
 */
export function reassemble(g: Graph, weights: Weights, tokens: Value, level: number, dims: BeitDims, head: MidasHeadDims, grid: Grid): Value {
  const key = `pretrained.act_postprocess${level}`;
  const dim = dims.embedDim;
  const channels = head.outChannels[level - 1];
  const map = g.reshape(g.transpose(tokens, [1, 0]), [1, dim, grid.height, grid.width]);
  const projected = conv2d(g, weights, map, `${key}.3`, [channels, dim, 1, 1]);
  if (level === 1) return convTranspose2d(g, weights, projected, `${key}.4`, channels, 4);
  if (level === 2) return convTranspose2d(g, weights, projected, `${key}.4`, channels, 2);
  if (level === 3) return projected;
  return conv2d(g, weights, projected, `${key}.4`, [channels, channels, 3, 3], { stride: 2, padding: 1 });
}

/**
 * `DPTDepthModel`'s head (`scratch.output_conv`, non_negative): conv 3x3 (features → features/2),
 * bilinear 2x (align_corners), conv 3x3 (→ head_features_2), ReLU, conv 1x1 (→ 1), ReLU.
 * Returns [1, 1, 2h, 2w].
 */
export function midasHead(g: Graph, weights: Weights, path: Value, head: MidasHeadDims): Value {
  return g.scoped("output_conv", () => {
    const key = "scratch.output_conv";
    const half = Math.floor(head.features / 2);
    const reduced = conv2d(g, weights, path, `${key}.0`, [half, head.features, 3, 3], { padding: 1 });
    const [, , height, width] = reduced.shape as number[];
    const upsampled = bilinearAlignCorners(g, reduced, 2 * height, 2 * width);
    const hidden = g.relu(conv2d(g, weights, upsampled, `${key}.2`, [head.headFeatures2, half, 3, 3], { padding: 1 }));
    return g.relu(conv2d(g, weights, hidden, `${key}.4`, [1, head.headFeatures2, 1, 1]));
  });
}

/** Builds MiDaS's whole inference graph from `weights` into `g`. */
export function buildMidas(g: Graph, weights: Weights, options: BuildOptions): void {
  const frame = imageInput(g);
  const image = preprocess(g, frame, options);

  const beit = readBeitDims(weights, MIDAS_ENCODER_PREFIX);
  const head = readMidasHeadDims(weights);
  if (beit.depth <= Math.max(...MIDAS_HOOK_BLOCKS)) {
    throw new CheckpointError(`MiDaS reads blocks ${MIDAS_HOOK_BLOCKS.join(", ")}; this checkpoint has ${beit.depth} (${MIDAS_ENCODER_PREFIX}blocks.*)`, {
      key: `${MIDAS_ENCODER_PREFIX}blocks.0.norm1.weight`,
    });
  }
  const grid = beitGrid(beit, options.height, options.width);
  const patches = grid.height * grid.width;

  const hooks = beitFeatures(g, weights, image, MIDAS_ENCODER_PREFIX, beit, grid, MIDAS_HOOK_BLOCKS);
  const disparity = g.scoped("dpt", () => {
    const layers = hooks.map((tokens, i) =>
      g.scoped(`level${i + 1}`, () => {
        const projected = projectReadout(g, weights, tokens, `pretrained.act_postprocess${i + 1}.0`, beit.embedDim, patches);
        const resized = reassemble(g, weights, projected, i + 1, beit, head, grid);
        return conv2d(g, weights, resized, `scratch.layer${i + 1}_rn`, [head.features, head.outChannels[i], 3, 3], { padding: 1, bias: false });
      }),
    );
    return midasHead(g, weights, fuseDptLevels(g, weights, layers, "scratch", head.features), head);
  });

  g.markStage("raw", disparity);
  // On the resized network output: the wrapper's code uses its input there (see the module notes).
  depthOutput(g, disparityToMetres(g, resizeToInput(g, disparity, frame), MIDAS_ALPHA));
  // The raw stage is MiDaS's squeezed [1, 416, 736], as `output_raw.npy` holds it.
  const stage = (name: StageOutput): Value => (name === "raw" ? g.squeeze(disparity, [1]) : image);
  for (const name of options.stageOutputs ?? []) g.output(stage(name), name);
}
