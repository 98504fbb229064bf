/**
 * Worker thread that owns one ONNX Runtime session. onnxruntime-node's `session.run` is synchronous
 * inside a setImmediate: on the main thread no timer could fire during a multi-second run, so every
 * session lives here and the main thread only posts frames.
 * @internal
 * @module
 */
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { FromWorker, ToWorker, WorkerFrame, WorkerSessionOptions } from "./protocol.js";

if (!parentPort) throw new Error("onnxruntime_worker must run in a worker thread");
const port = parentPort;

let session: ort.InferenceSession | undefined;
/** ONNX Runtime's node binding refuses shared memory, so shared frames are copied into this buffer. */
let staging = new Uint8Array(0);

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function open(path: string, options: WorkerSessionOptions): Promise<FromWorker> {
  session = await ort.InferenceSession.create(path, {
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    interOpNumThreads: 1,
    ...(options.threads === undefined ? {} : { intraOpNumThreads: options.threads }),
    logSeverityLevel: 3,
    // By default ONNX Runtime folds every constant subgraph, which turns MiDaS's 24 relative-position
    // bias lookups into 2.2 GB of constants: opening takes 5.4 s instead of 1.5 s and peak memory
    // 4.4 GB instead of 2.3 GB, to save ~8% per frame. Bounding folded outputs keeps the lookups.
    extra: { optimization: { constant_folding_max_output_size_in_bytes: String(64 * 2 ** 20) } },
  });
  return { type: "opened", id: 0, inputNames: [...session.inputNames], outputNames: [...session.outputNames] };
}

function frameBytes(frame: WorkerFrame): Uint8Array {
  const length = frame.shape.reduce((a, b) => a * b, 1);
  const view = new Uint8Array(frame.buffer, frame.byteOffset, length);
  if (!(frame.buffer instanceof SharedArrayBuffer)) return view;
  if (staging.length < length) staging = new Uint8Array(length);
  const copy = staging.subarray(0, length);
  copy.set(view);
  return copy;
}

async function run(message: Extract<ToWorker, { type: "run" }>): Promise<void> {
  if (!session) throw new Error("the ONNX Runtime session is not open");
  const { frame } = message;
  const [height, width] = frame.shape;
  const depth = new Float32Array(height * width);
  const start = performance.now();
  await session.run(
    { [session.inputNames[0]]: new ort.Tensor("uint8", frameBytes(frame), frame.shape) },
    { [session.outputNames[0]]: new ort.Tensor("float32", depth, [height, width]) },
  );
  const runMs = performance.now() - start;
  const returnedInput = frame.buffer instanceof SharedArrayBuffer ? undefined : frame.buffer;
  const transfer = returnedInput ? [returnedInput] : [];
  if (message.out) {
    new Float32Array(message.out.buffer, message.out.byteOffset, depth.length).set(depth);
    post({ type: "result", id: message.id, shape: [height, width], returnedInput, runMs }, transfer);
  } else {
    post({ type: "result", id: message.id, depth, shape: [height, width], returnedInput, runMs }, [depth.buffer, ...transfer]);
  }
}

function errorOf(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: "Error", message: String(error) };
}

// Messages are handled one at a time: session.run blocks this thread anyway, and ordering keeps
// results matched to requests.
let queue = Promise.resolve();
port.on("message", (message: ToWorker) => {
  queue = queue.then(async () => {
    try {
      if (message.type === "open") post({ ...(await open(message.path, message.options)), id: message.id });
      else if (message.type === "run") await run(message);
      else {
        await session?.release();
        session = undefined;
        post({ type: "closed", id: message.id });
      }
    } catch (error) {
      const returnedInput =
        message.type === "run" && !(message.frame.buffer instanceof SharedArrayBuffer) ? message.frame.buffer : undefined;
      post({ type: "error", id: message.id, error: errorOf(error), returnedInput }, returnedInput ? [returnedInput] : []);
    }
  });
});
