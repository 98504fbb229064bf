/**
 * The models endosynth knows: one entry per model name with everything that defines its inference
 * contract (input size, normalisation, post-processing), where its checkpoint comes from, how to
 * recognise its state dict, and its graph builder. Adding a model is one entry here plus its
 * builder.
 *
 * @example
 * ```ts
 * import { modelSpec } from "endosynth";
 * modelSpec("dav1").checkpointFile; // "dav1-f.pth"
 * ```
 * @module
 */
import { assertOneOf } from "../is.js";
import type { Graph } from "../onnx/graph.js";
import { buildDepthAnything, type StageOutput } from "./depth_anything.js";
import { buildEndoDac } from "./endodac.js";
import { buildMidas, MIDAS_NORMALISATION } from "./midas.js";
import { IMAGENET_NORMALISATION, type ChannelOrder, type Normalisation } from "./blocks/preprocess.js";
import type { Weights } from "./weights.js";

/** Names of the EndoSynth models. */
export const MODEL_NAMES = ["dav1", "dav2", "endodac", "midas"] as const;

/** One of {@link MODEL_NAMES}. */
export type ModelName = (typeof MODEL_NAMES)[number];

/** Options a builder receives from the converter. */
export interface ModelBuildOptions {
  channelOrder: ChannelOrder;
  /** Extra outputs for stage-by-stage tests; never set in converted models. */
  stageOutputs?: readonly StageOutput[];
}

/** Everything that defines one model. */
export interface ModelSpec {
  /** Registry name, e.g. `"dav1"`. */
  readonly name: ModelName;
  /** The network, in words. */
  readonly architecture: string;
  /** What the output means, in one line. */
  readonly description: string;
  /** File name of the fine-tuned checkpoint the authors publish (and the default under ./checkpoints). */
  readonly checkpointFile: string;
  /** Where the authors publish it. */
  readonly checkpointUrl: string;
  /** The licence the authors publish the checkpoint under: downloading or using it means accepting it. */
  readonly weightsLicense: {
    /** Stable identifier, under which an acceptance is remembered. */
    readonly id: string;
    /** Its name, in words. */
    readonly name: string;
    /** Where its full text is published. */
    readonly url: string;
    /** What it allows and asks, in one sentence (the full text at `url` governs). */
    readonly summary: string;
  };
  /** Elements in the full-size checkpoint (every key of its state dict). */
  readonly parameters: number;
  /** Network input size: every frame is resized to it (OpenCV INTER_CUBIC semantics), aspect ignored. */
  readonly input: {
    /** Rows, in pixels. */
    readonly height: number;
    /** Columns, in pixels. */
    readonly width: number;
  };
  /** Applied after `/ 255`, to the channels in network order. */
  readonly normalisation: Normalisation;
  /** From the network's output to metres at the frame's size, in words. */
  readonly postprocess: string;
  /**
   * Whether a state dict is this architecture's, judged from its keys: the reason (a telling key)
   * when it is, `undefined` when it is not. Used to name the architecture of a wrong checkpoint.
   */
  readonly recognize: (keys: readonly string[]) => string | undefined;
  /**
   * Builds the whole-contract graph. Used by the converter; its graph and weights types are not
   * public.
   * @internal
   */
  readonly build: (g: Graph, weights: Weights, options: ModelBuildOptions) => void;
}

const WEIGHTS_URL = "https://digitalsurgery-public.s3.eu-west-1.amazonaws.com/EndoSynth/weights";
/** The EndoSynth repository's LICENSE.txt, which covers the fine-tuned weights and the dataset. */
const ENDOSYNTH_LICENSE: ModelSpec["weightsLicense"] = {
  id: "endosynth-weights-2025",
  name: "EndoSynth terms and conditions (Copyright 2025 Medtronic)",
  url: "https://github.com/TouchSurgery/EndoSynth/blob/main/LICENSE.txt",
  summary:
    "non-commercial research use only; anyone you share the weights (or derivatives) with must get these terms; " +
    "provided as is, without warranty of any kind",
};
const NETWORK_INPUT = { height: 420, width: 742 } as const;

/** The first key matching `pattern`, as recognition evidence. */
function evidence(keys: readonly string[], pattern: RegExp): string | undefined {
  const key = keys.find((k) => pattern.test(k));
  return key === undefined ? undefined : `it has the key ${key}`;
}

/**
 * Depth Anything v1 and v2 checkpoints have the same keys and shapes (the EndoSynth v2 wrapper
 * only drops a parameterless ReLU), so keys cannot tell them apart: both recognise either.
 */
function recognizeDepthAnything(keys: readonly string[]): string | undefined {
  if (!keys.some((k) => k.startsWith("depth_head.scratch.output_conv2."))) return undefined;
  return evidence(keys, /^pretrained\.blocks\.\d+\.attn\.qkv\.weight$/);
}

const SPECS: Readonly<Record<ModelName, ModelSpec>> = {
  dav1: {
    name: "dav1",
    architecture: "Depth Anything v1: DPT head on a DINOv2 ViT-B/14 encoder (features 128)",
    description: "metric depth in metres, 0-0.3 m, from the head's inverse-depth output",
    checkpointFile: "dav1-f.pth",
    checkpointUrl: `${WEIGHTS_URL}/dav1-f.pth`,
    weightsLicense: ENDOSYNTH_LICENSE,
    parameters: 97_470_785,
    input: NETWORK_INPUT,
    normalisation: IMAGENET_NORMALISATION,
    postprocess: "0.3 * sigmoid(-log(relu(raw) + 1e-5)), then bilinear (align_corners) to the frame size",
    recognize: recognizeDepthAnything,
    build: (g, weights, options) => buildDepthAnything(g, weights, "v1", { ...NETWORK_INPUT, normalisation: IMAGENET_NORMALISATION, ...options }),
  },
  dav2: {
    name: "dav2",
    architecture: "Depth Anything v2: DPT head on a DINOv2 ViT-B/14 encoder (features 128), final ReLU removed",
    description: "metric depth in metres, 0-0.3 m, from the head's logits",
    checkpointFile: "dav2-f.pth",
    checkpointUrl: `${WEIGHTS_URL}/dav2-f.pth`,
    weightsLicense: ENDOSYNTH_LICENSE,
    parameters: 97_470_785,
    input: NETWORK_INPUT,
    normalisation: IMAGENET_NORMALISATION,
    postprocess: "0.3 * sigmoid(raw), then bilinear (align_corners) to the frame size",
    recognize: recognizeDepthAnything,
    build: (g, weights, options) => buildDepthAnything(g, weights, "v2", { ...NETWORK_INPUT, normalisation: IMAGENET_NORMALISATION, ...options }),
  },
  endodac: {
    name: "endodac",
    architecture: "EndoDAC: DINOv2 ViT-B/14 with DV-LoRA and residual blocks, DPT decoder at 224x280",
    description: "metric depth in metres, 0.001-0.3 m, from the decoder's sigmoid disparity",
    checkpointFile: "endodac-f.pth",
    checkpointUrl: `${WEIGHTS_URL}/endodac-f.pth`,
    weightsLicense: ENDOSYNTH_LICENSE,
    parameters: 99_091_748,
    input: NETWORK_INPUT,
    normalisation: IMAGENET_NORMALISATION,
    postprocess: "bilinear (align_corners) to the frame size, then 1 / (1/0.3 + (1/0.001 - 1/0.3) * disp)",
    recognize: (keys) => evidence(keys, /^encoder\.blocks\.\d+\..*lora_[AB]$/),
    build: (g, weights, options) => buildEndoDac(g, weights, { ...NETWORK_INPUT, normalisation: IMAGENET_NORMALISATION, ...options }),
  },
  midas: {
    name: "midas",
    architecture: "MiDaS v3.1 DPT on a BEiT-L/16-512 encoder (features 256)",
    description: "metric depth in metres, from the network's non-negative disparity",
    checkpointFile: "midas-f.pth",
    checkpointUrl: `${WEIGHTS_URL}/midas-f.pth`,
    weightsLicense: ENDOSYNTH_LICENSE,
    parameters: 345_014_441,
    input: NETWORK_INPUT,
    normalisation: MIDAS_NORMALISATION,
    postprocess: "bilinear (align_corners) to the frame size, then 70000 / (1/0.3 + (1/0.001 - 1/0.3) * disp)",
    recognize: (keys) => evidence(keys, /^pretrained\.model\.blocks\.\d+\.attn\.relative_position_bias_table$/),
    build: (g, weights, options) => buildMidas(g, weights, { ...NETWORK_INPUT, normalisation: MIDAS_NORMALISATION, ...options }),
  },
};

/**
 * The registry entry of `name`.
 * @throws {@link endosynth!InputError | InputError} for an unknown name, listing the valid ones.
 */
export function modelSpec(name: ModelName): ModelSpec {
  assertOneOf("model", name, MODEL_NAMES);
  return SPECS[name];
}

/** Every registry entry, in {@link MODEL_NAMES} order. */
export function modelSpecs(): ModelSpec[] {
  return MODEL_NAMES.map((name) => SPECS[name]);
}

/** The models whose `recognize` accepts these keys, with the evidence. */
export function recognizeArchitectures(keys: readonly string[]): { name: ModelName; evidence: string }[] {
  return modelSpecs().flatMap((spec) => {
    const found = spec.recognize(keys);
    return found === undefined ? [] : [{ name: spec.name, evidence: found }];
  });
}
