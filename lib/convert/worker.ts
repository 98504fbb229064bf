/**
 * Worker thread that converts checkpoints (see convert.ts): reading a checkpoint and building its
 * graph is 1 to 4 seconds of synchronous work that must not stall the caller's event loop. Its
 * progress, result and errors (class, code, file, key) reach the caller as if it had run there.
 * @module
 */
import type { Progress } from "../progress.js";
import { serveCalls, type CallContext } from "../threads/rpc.js";
import { convertInThisThread } from "./in_this_thread.js";
import type { ConversionReport, ConvertOptions } from "./options.js";

/** What the worker is asked to convert: the options that are plain data. */
export type ConvertRequest = Required<Pick<ConvertOptions, "model" | "checkpoint" | "output" | "channelOrder" | "precision">>;

function convert(request: ConvertRequest, context: CallContext<Progress>): Promise<ConversionReport> {
  return convertInThisThread({ ...request, onProgress: (progress) => context.emit(progress), signal: context.signal });
}

serveCalls({ convert });
