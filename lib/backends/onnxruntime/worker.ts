/**
 * Worker thread that owns one ONNX Runtime session. onnxruntime-node's `session.run` is synchronous
 * inside a setImmediate: on the main thread no timer could fire during a multi-second run, so every
 * session lives here and the main thread only posts frames.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { arch, cpus } from "node:os";
import { fileSha256 } from "../../cache/file_stamps.js";
import { sha256File } from "../../cache/file_hash.js";
import { temporaryPathFor, writeFileAtomicSync } from "../../io/atomic.js";
import { serveCalls } from "../../threads/rpc.js";
import type { CallContext } from "../../threads/rpc.js";
import type { OpenRequest, RunRequest, RunResult, WorkerFrame } from "./protocol.js";
import { locateOnnxRuntime, type OnnxRuntime } from "./runtime.js";

type Session = Awaited<ReturnType<OnnxRuntime["InferenceSession"]["create"]>>;
type SessionOptions = NonNullable<Parameters<OnnxRuntime["InferenceSession"]["create"]>[1]>;

let ort: OnnxRuntime | undefined;
let session: Session | undefined;
/** ONNX Runtime's node binding refuses shared memory, so shared frames are copied into this buffer. */
let staging = new Uint8Array(0);

function sessionOptions(threads: number | undefined): SessionOptions {
  return {
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    interOpNumThreads: 1,
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
    logSeverityLevel: 3,
    extra: {
      // By default ONNX Runtime folds every constant subgraph, which turns MiDaS's 24
      // relative-position bias lookups into 2.2 GB of constants: opening takes 5.4 s instead of
      // 1.5 s and peak memory 4.4 GB instead of 2.3 GB, to save ~8% per frame. Bounding folded
      // outputs keeps the lookups.
      optimization: { constant_folding_max_output_size_in_bytes: String(64 * 2 ** 20) },
      // Pre-packing copies every MatMul weight into a blocked layout when the session opens: for
      // MiDaS 5.4 s and 1.2 GB more memory (the weights are otherwise memory-mapped from the data
      // file), to save a per-run packing of B that costs ~1/M of the product with M >= 1000 tokens.
      session: { disable_prepacking: "1" },
    },
  };
}

/**
 * The optimized graph's file for this ONNX Runtime and CPU: level "all" may lay tensors out for
 * the processor it ran on, so another CPU model (a cache on a shared disk) gets its own.
 */
function optimizedPath(prefix: string, version: string): string {
  const cpu = createHash("sha256").update(`${arch()}|${cpus()[0]?.model ?? ""}`).digest("hex").slice(0, 8);
  return `${prefix}onnxruntime-${version}-${cpu}.onnx`;
}

/** Whether the optimized graph at `path` is the one its checksum file vouches for. */
async function isIntact(path: string, cacheRoot: string): Promise<boolean> {
  if (!existsSync(path) || !existsSync(`${path}.sha256`)) return false;
  return readFileSync(`${path}.sha256`, "utf8").trim() === (await fileSha256(path, cacheRoot));
}

/**
 * Opens the optimized graph kept from an earlier session, without optimizing again (a fraction of
 * the time); failing that, opens the model and keeps its optimized graph for the next time.
 */
async function openWithOptimizedCache(runtime: OnnxRuntime, request: OpenRequest, cache: { prefix: string; cacheRoot: string }, version: string): Promise<Session> {
  const options = sessionOptions(request.threads);
  const optimized = optimizedPath(cache.prefix, version);
  if (await isIntact(optimized, cache.cacheRoot)) {
    try {
      return await runtime.InferenceSession.create(optimized, { ...options, graphOptimizationLevel: "disabled" });
    } catch {
      // Unreadable after all: made again below.
    }
  }
  const temporary = temporaryPathFor(optimized);
  try {
    const opened = await runtime.InferenceSession.create(request.path, { ...options, optimizedModelFilePath: temporary });
    writeFileAtomicSync(`${optimized}.sha256`, Buffer.from(`${await sha256File(temporary)}\n`));
    await rename(temporary, optimized);
    return opened;
  } finally {
    await rm(temporary, { force: true });
  }
}

async function open(request: OpenRequest): Promise<void> {
  const { runtime, source } = locateOnnxRuntime();
  ort = runtime;
  session = request.optimizedCache
    ? await openWithOptimizedCache(runtime, request, request.optimizedCache, source.version)
    : await runtime.InferenceSession.create(request.path, sessionOptions(request.threads));
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
