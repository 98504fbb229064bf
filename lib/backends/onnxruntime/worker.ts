/**
 * Worker thread that owns one ONNX Runtime session. onnxruntime-node's `session.run` is synchronous
 * inside a setImmediate: on the main thread no timer could fire during a multi-second run, so every
 * session lives here and the main thread only posts frames.
 * @module
 */
import { serveCalls } from "../../threads/rpc.js";
import type { CallContext } from "../../threads/rpc.js";
import type { OpenRequest, RunRequest, RunResult, WorkerFrame } from "./protocol.js";
import { loadOnnxRuntime, type OnnxRuntime } from "./runtime.js";

let ort: OnnxRuntime | undefined;
let session: Awaited<ReturnType<OnnxRuntime["InferenceSession"]["create"]>> | undefined;
/** ONNX Runtime's node binding refuses shared memory, so shared frames are copied into this buffer. */
let staging = new Uint8Array(0);

async function open({ path, threads }: OpenRequest): Promise<void> {
  ort = loadOnnxRuntime();
  session = await ort.InferenceSession.create(path, {
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    interOpNumThreads: 1,
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
    logSeverityLevel: 3,
    // By default ONNX Runtime folds every constant subgraph, which turns MiDaS's 24 relative-position
    // bias lookups into 2.2 GB of constants: opening takes 5.4 s instead of 1.5 s and peak memory
    // 4.4 GB instead of 2.3 GB, to save ~8% per frame. Bounding folded outputs keeps the lookups.
    extra: { optimization: { constant_folding_max_output_size_in_bytes: String(64 * 2 ** 20) } },
  });
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

async function run({ frame, out }: RunRequest, context: CallContext<never>): Promise<RunResult> {
  if (!ort || !session) throw new Error("the ONNX Runtime session is not open");
  const [height, width] = frame.shape;
  const depth = new Float32Array(height * width);
  await session.run(
    { [session.inputNames[0]]: new ort.Tensor("uint8", frameBytes(frame), frame.shape) },
    { [session.outputNames[0]]: new ort.Tensor("float32", depth, [height, width]) },
  );
  const returnedInput = frame.buffer instanceof SharedArrayBuffer ? undefined : frame.buffer;
  if (returnedInput) context.transfer(returnedInput);
  if (out) {
    new Float32Array(out.buffer, out.byteOffset, depth.length).set(depth);
    return { returnedInput };
  }
  context.transfer(depth.buffer);
  return { depth, returnedInput };
}

async function close(): Promise<void> {
  await session?.release();
  session = undefined;
}

serveCalls({ open, run, close });
