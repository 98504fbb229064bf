/**
 * Worker thread that converts one checkpoint (see convert_in_worker.ts), then exits.
 * @internal
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { transferableError } from "../threads/transferred_error.js";
import { convertInThisThread } from "./convert.js";
import type { ConvertRequest, FromConvertWorker, ToConvertWorker } from "./in_worker.js";

if (!parentPort) throw new Error("convert_worker must run in a worker thread");
const port = parentPort;
const { options, reportProgress } = workerData as ConvertRequest;
const controller = new AbortController();

function post(message: FromConvertWorker): void {
  port.postMessage(message);
}

port.on("message", (message: ToConvertWorker) => {
  if (message.type === "abort") controller.abort();
});

try {
  const report = await convertInThisThread({
    ...options,
    ...(reportProgress ? { onProgress: (progress) => post({ type: "progress", progress }) } : {}),
    signal: controller.signal,
  });
  post({ type: "done", report });
} catch (error) {
  post({ type: "failed", error: transferableError(error) });
} finally {
  // Nothing else keeps this thread alive: it exits once the reply is out.
  port.unref();
}
