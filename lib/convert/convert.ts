/**
 * `convertCheckpoint`: from the authors' PyTorch checkpoint to an ONNX model that carries the
 * whole inference contract (uint8 [H, W, 3|4] frame in, float32 [H, W] metres out), in TypeScript.
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from "endosynth/checkpoint";
 * const report = await convertCheckpoint({ model: "dav1", checkpoint: "checkpoints/dav1-f.pth", output: "dav1.onnx" });
 * console.log(report.parameters, report.unusedKeys, report.files);
 * ```
 * @module
 */
import { AbortError } from "../errors.js";
import { siblingModule } from "../threads/start_worker.js";
import { WorkerClient } from "../threads/rpc.js";
import type { Progress } from "../progress.js";
import { convertInThisThread } from "./in_this_thread.js";
import { validateConvertOptions, type ConversionReport, type ConvertOptions } from "./options.js";
import type { ConvertRequest } from "./worker.js";

export type { ChannelOrder, ConversionReport, ConvertOptions, Precision } from "./options.js";
export { converterVersion } from "./version.js";

const workerUrl = siblingModule("worker", import.meta.url);

/**
 * Converts a checkpoint to an ONNX model with the whole inference contract. Every state-dict key
 * is either used by the graph or reported in {@link ConversionReport.unusedKeys} with its reason.
 *
 * A checkpoint file is converted in a worker thread, so the 1 to 4 seconds of reading and graph
 * building never stall the caller's event loop; a `stateDict` already in memory is converted in
 * the calling thread.
 * @throws {@link endosynth!CheckpointError | CheckpointError} for a checkpoint of another architecture (naming it), missing or
 * unexpected keys, or wrong shapes (naming them all); also the reader's errors.
 * @throws {@link endosynth!InputError | InputError} for bad options.
 * @throws {@link endosynth!AbortError | AbortError} when `signal` aborts; nothing is left at `output`.
 */
export async function convertCheckpoint(options: ConvertOptions): Promise<ConversionReport> {
  validateConvertOptions(options);
  if (options.stateDict) return convertInThisThread(options);
  // Made before the first await, while the caller's frames are still on the stack.
  const callSite = new Error();
  if (options.signal?.aborted) throw new AbortError("The conversion was aborted");
  const started = performance.now();
  const checkpoint = options.checkpoint!;
  const request: ConvertRequest = {
    model: options.model,
    checkpoint,
    output: options.output,
    channelOrder: options.channelOrder ?? "rgb",
    precision: options.precision ?? "fp32",
  };
  const worker = new WorkerClient(workerUrl, `the conversion worker for ${checkpoint}`);
  try {
    const report = await worker.call<ConversionReport, Progress>("convert", request, {
      ...(options.onProgress ? { onEvent: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      callSite,
    });
    return { ...report, seconds: (performance.now() - started) / 1000 };
  } finally {
    await worker.close();
  }
}
