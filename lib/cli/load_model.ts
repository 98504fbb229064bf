/**
 * How every command that runs a model loads it: the same flags (`--backend`, `--channel-order`,
 * `-c`, `--onnx`, `--threads`) mean the same `load()` options, with the phases of a long first
 * load (hashing, conversion, engine build) shown unless `-q`.
 * @module
 */
import { resolve } from "node:path";
import { load, type BackendChoice, type Model } from "../model.js";
import type { ChannelOrder } from "../models/blocks/preprocess.js";
import type { ModelName } from "../models/registry.js";
import { PhaseProgress } from "./progress.js";

/** The model flags a command shares. */
export interface ModelFlags {
  backend?: BackendChoice;
  channelOrder?: ChannelOrder;
  checkpoint?: string;
  onnx?: string;
  threads?: number;
  quiet?: boolean;
}

/** Loads `name` as the flags say, with progress on stderr. */
export function loadForCommand(name: ModelName, flags: ModelFlags): Promise<Model> {
  const progress = new PhaseProgress({ quiet: flags.quiet });
  return load(name, {
    ...(flags.backend ? { backend: flags.backend } : {}),
    onProgress: progress.onProgress,
    ...(flags.channelOrder ? { channelOrder: flags.channelOrder } : {}),
    ...(flags.checkpoint ? { checkpoint: flags.checkpoint } : {}),
    ...(flags.onnx ? { onnx: resolve(flags.onnx) } : {}),
    ...(flags.threads ? { threads: flags.threads } : {}),
  }).finally(() => progress.stop());
}
