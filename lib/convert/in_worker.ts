/**
 * Conversion in a worker thread. Reading a checkpoint and building its graph is 1 to 4 seconds of
 * synchronous work; in the caller's thread it would stall the event loop of an app that is serving
 * live frames while a model loads. The worker runs the very same conversion; its progress, result
 * and errors (class, code, file, key) come back as if it had run here.
 * @internal
 * @module
 */
import type { Progress } from "../progress.js";
import { RuntimeFailureError } from "../errors.js";
import { siblingModule, startWorker } from "../threads/start_worker.js";
import { rebuiltError, type TransferredError } from "../threads/transferred_error.js";
import type { ConversionReport, ConvertOptions } from "./convert.js";

/** What the worker is asked to convert: the options that are plain data. */
export interface ConvertRequest {
  options: Required<Pick<ConvertOptions, "model" | "checkpoint" | "output" | "channelOrder" | "precision">>;
  /** Whether the caller wants progress messages. */
  reportProgress: boolean;
}

export type ToConvertWorker = { type: "abort" };

export type FromConvertWorker =
  | { type: "progress"; progress: Progress }
  | { type: "done"; report: ConversionReport }
  | { type: "failed"; error: TransferredError };

const workerUrl = siblingModule("worker", import.meta.url);

/**
 * Runs a conversion of a checkpoint file (already validated, `signal` not yet aborted) in a worker
 * thread. Aborting `signal` asks the worker to stop at its next check; the promise settles once it
 * has cleaned up. A failure is rethrown with the stack of `callSite`, made in the caller's own call.
 */
export function convertInWorker(
  request: ConvertRequest,
  onProgress: ((progress: Progress) => void) | undefined,
  signal: AbortSignal | undefined,
  callSite: Error,
): Promise<ConversionReport> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(workerUrl, { workerData: request });
    const abort = (): void => worker.postMessage({ type: "abort" } satisfies ToConvertWorker);
    signal?.addEventListener("abort", abort, { once: true });
    let settled = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", abort);
      finish();
    };
    worker.on("message", (message: FromConvertWorker) => {
      if (message.type === "progress") onProgress?.(message.progress);
      else if (message.type === "done") settle(() => resolve(message.report));
      else settle(() => reject(rebuiltError(message.error, callSite)));
    });
    worker.on("error", (error) => settle(() => reject(new RuntimeFailureError(`The conversion worker for ${request.options.checkpoint} failed: ${error.message}`, { file: request.options.checkpoint, cause: error }))));
    worker.on("exit", (code) => settle(() => reject(new RuntimeFailureError(`The conversion worker for ${request.options.checkpoint} exited with code ${code} before finishing`, { file: request.options.checkpoint }))));
  });
}
