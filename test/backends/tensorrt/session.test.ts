import test from "ava";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EngineProvider, FrameGeometry } from "../../../lib/backends/tensorrt/engine_provider.js";
import { openTensorRT, tensorrtLog, tensorrtStatus, TensorRTSession } from "../../../lib/backends/tensorrt/index.js";
import { checkTensorRTOptions } from "../../../lib/backends/tensorrt/options.js";
import { describeTensorRTAvailability } from "../../../lib/backends/tensorrt/status.js";
import type { Progress } from "../../../lib/progress.js";
import { AbortError, BackendUnavailableError, DisposedError, InputError, RuntimeFailureError } from "../../../lib/errors.js";
import { ndarray, type NdArray } from "../../../lib/ndarray/ndarray.js";
import { loadNativeAddon, type NativeAddon, type NativeStatus } from "../../../lib/backends/tensorrt/addon.js";
import { temporaryDirectory } from "../../support/fixtures.js";

// Independent evidence of an NVIDIA driver: the kernel module's proc entry.
const hasNvidiaDriver = existsSync("/proc/driver/nvidia/version");
const NO_DRIVER_REASON =
  "no NVIDIA driver: cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version";

function addon(): NativeAddon {
  const state = loadNativeAddon();
  if (!state.loaded) throw new Error(`the native addon must be built for these tests: ${state.reason}`);
  return state.addon;
}

/** A model file for option checks (they only need it to exist). */
function modelFile(t: { teardown: (fn: () => void) => void }): { onnxPath: string; cacheDir: string } {
  const folder = temporaryDirectory();
  t.teardown(folder.cleanup);
  const onnxPath = join(folder.path, "model.onnx");
  writeFileSync(onnxPath, "placeholder");
  return { onnxPath, cacheDir: join(folder.path, "cache") };
}

/** A frame whose pixels all differ, so a result from the wrong frame cannot go unnoticed. */
function frame(height: number, width: number, seed: number, channels: 3 | 4 = 3): NdArray<"uint8"> {
  return ndarray(Uint8Array.from({ length: height * width * channels }, (_, i) => (i * 31 + seed * 17) % 251), [height, width, channels]);
}

/** What the loopback engine computes: 65536 R + 256 G + B per pixel. */
function expectedDepth(input: NdArray<"uint8">): number[] {
  const [height, width, channels] = input.shape as [number, number, number];
  return Array.from({ length: height * width }, (_, i) => 65536 * input.data[i * channels]! + 256 * input.data[i * channels + 1]! + input.data[i * channels + 2]!);
}

interface LoopbackSetup {
  session: TensorRTSession;
  requests: FrameGeometry[];
  progress: Progress[];
}

function loopbackSession(options: { inflight?: number; delayMs?: number; externalBuffers?: boolean; provider?: EngineProvider; onProgress?: (p: Progress) => void } = {}): LoopbackSetup {
  const requests: FrameGeometry[] = [];
  const progress: Progress[] = [];
  const inflight = options.inflight ?? 2;
  const provider: EngineProvider =
    options.provider ??
    (async (geometry, context) => {
      requests.push(geometry);
      context.onProgress({ phase: "building TensorRT engine", fraction: 0.5 });
      return addon().testing.loadLoopbackEngine({ ...geometry, slots: inflight, delayMs: options.delayMs ?? 0 });
    });
  const arena = new (addon().HostArena)({ pinned: false, externalBuffers: options.externalBuffers ?? true });
  const session = new TensorRTSession(provider, arena, {
    inflight,
    onProgress: (p) => {
      progress.push(p);
      options.onProgress?.(p);
    },
  });
  return { session, requests, progress };
}

function nativeStatus(overrides: { build?: Partial<NativeStatus["build"]>; cuda?: Partial<NativeStatus["cuda"]>; tensorrt?: Partial<NativeStatus["tensorrt"]> }): NativeStatus {
  return {
    build: { cuda: true, tensorrt: true, cudaRuntime: "13.0", tensorrtHeaders: "10.16.0", tensorrtMajor: 10, napiVersion: 8, compiler: "12.2.0", ...overrides.build },
    cuda: {
      runtimeVersion: "13.0",
      driverVersion: "13.0",
      devices: [{ index: 0, name: "NVIDIA GeForce RTX 4090", computeCapability: "8.9", memoryBytes: 25_393_692_672 }],
      ...overrides.cuda,
    },
    tensorrt: {
      loaded: true,
      version: "10.16.0",
      parserVersion: 1000,
      libraryPath: "/usr/lib/x86_64-linux-gnu/libnvinfer.so.10",
      parserLibraryPath: "/usr/lib/x86_64-linux-gnu/libnvonnxparser.so.10",
      soname: "libnvinfer.so.10",
      ...overrides.tensorrt,
    },
  };
}

(hasNvidiaDriver ? test.skip : test)("status reports that there is no NVIDIA driver and why TensorRT is not used", (t) => {
  const status = tensorrtStatus();
  t.false(status.available);
  t.is(status.reason, NO_DRIVER_REASON);
  t.true(status.addon.loaded);
  t.true(status.addon.builtWithCuda);
  t.is(status.cuda.error, "cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version");
  t.deepEqual(status.cuda.devices, []);
  t.is(status.cuda.driverVersion, undefined);
  t.regex(
    status.tensorrt.error ?? "",
    status.addon.builtWithTensorRT ? /^libnvinfer\.so\.\d+ could not be opened \(libnvinfer\.so\.\d+: cannot open shared object file/ : /^the native addon was built without TensorRT headers$/,
  );
});

(hasNvidiaDriver ? test.skip : test)("openTensorRT rejects with BackendUnavailableError carrying the reason", async (t) => {
  const files = modelFile(t);
  const error = await t.throwsAsync(openTensorRT({ ...files, onnxHash: "abc", precision: "fp16" }), { instanceOf: BackendUnavailableError });
  t.is(error?.message, NO_DRIVER_REASON);
  t.is((error as BackendUnavailableError).code, "ERR_ENDOSYNTH_BACKEND_UNAVAILABLE");
  t.false(existsSync(files.cacheDir), "nothing is written when TensorRT cannot run");
});

test("the reason names what is missing, in the order a user has to fix it", (t) => {
  const sentence = (overrides: Parameters<typeof nativeStatus>[0]) => describeTensorRTAvailability({ loaded: true }, nativeStatus(overrides));
  t.deepEqual(describeTensorRTAvailability({ loaded: false, reason: "the native addon could not be loaded (x: y)" }, undefined), {
    available: false,
    reason: "the native addon could not be loaded (x: y)",
  });
  t.regex(sentence({ build: { cuda: false, tensorrt: false } }).reason, /^the native addon was built without CUDA \(no CUDA toolkit at build time\)/);
  const noDriver = { code: 35, call: "cudaGetDeviceCount", name: "cudaErrorInsufficientDriver", message: "cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version" };
  t.is(sentence({ build: { tensorrt: false }, cuda: { driverVersion: null, devices: [], failure: noDriver } }).reason, `no NVIDIA driver: ${noDriver.message}`);
  t.regex(sentence({ cuda: { driverVersion: "12.4", devices: [], failure: noDriver } }).reason, /^the NVIDIA driver supports CUDA 12\.4 but the addon links the CUDA 13\.0 runtime: .* — update the driver/);
  const noDevice = { code: 100, call: "cudaGetDeviceCount", name: "cudaErrorNoDevice", message: "cudaGetDeviceCount failed with cudaErrorNoDevice (100): no CUDA-capable device is detected" };
  t.is(sentence({ cuda: { devices: [], failure: noDevice } }).reason, `no CUDA device: ${noDevice.message}`);
  t.is(sentence({ cuda: { devices: [] } }).reason, "no CUDA device: the NVIDIA driver reports no GPU");
  t.regex(sentence({ build: { tensorrt: false } }).reason, /^the native addon was built without TensorRT headers — use the prebuilt one \(@endosynth\/linux-x64\), or rebuild it from source with them: `TensorRT_INCLUDE_DIR=<TensorRT include dir> npm_config_build_from_source=true npm rebuild endosynth`$/);
  t.is(
    sentence({ tensorrt: { loaded: false, version: null, failure: "libnvinfer.so.10 could not be opened (libnvinfer.so.10: cannot open shared object file: No such file or directory)" } }).reason,
    "TensorRT is unavailable: libnvinfer.so.10 could not be opened (libnvinfer.so.10: cannot open shared object file: No such file or directory) — install TensorRT 10 and make it visible to the dynamic loader (LD_LIBRARY_PATH)",
  );
  t.deepEqual(sentence({}), { available: true, reason: "TensorRT 10.16.0 on NVIDIA GeForce RTX 4090 (compute capability 8.9)" });
});

test("options are checked synchronously with messages naming the option", (t) => {
  const files = modelFile(t);
  const good = { ...files, onnxHash: "abc", precision: "fp16" as const };
  const cases: [unknown, string][] = [
    [undefined, "Expected an object for options but received undefined"],
    [{ ...good, onnxPath: "" }, 'Expected a non-empty string for options.onnxPath but received ""'],
    [{ ...good, onnxHash: 42 }, "Expected a non-empty string for options.onnxHash but received 42"],
    [{ ...good, precision: "int8" }, 'Expected one of "fp16", "fp32" for options.precision but received "int8"'],
    [{ ...good, optimizationLevel: 6 }, "Expected an integer between 0 and 5 for options.optimizationLevel but received 6"],
    [{ ...good, workspaceMiB: 0.5 }, "Expected an integer between 1 and 1048576 for options.workspaceMiB but received 0.5"],
    [{ ...good, inflight: 0 }, "Expected an integer between 1 and 8 for options.inflight but received 0"],
    [{ ...good, onProgress: "yes" }, 'Expected a function for options.onProgress but received "yes"'],
    [{ ...good, signal: {} }, "Expected an AbortSignal for options.signal but received an object"],
    [{ ...good, device: 1 }, 'Unknown option "device" in options; known options are onnxPath, onnxHash, cacheDir, precision, workspaceMiB, optimizationLevel, inflight, onProgress, signal'],
  ];
  for (const [options, message] of cases) {
    const error = t.throws(() => openTensorRT(options as never), { instanceOf: InputError });
    t.is(error?.message, message);
  }
  const missing = t.throws(() => openTensorRT({ ...good, onnxPath: join(files.cacheDir, "absent.onnx") }), { instanceOf: InputError });
  t.is(missing?.message, `The ONNX model ${join(files.cacheDir, "absent.onnx")} does not exist`);
  t.is((missing as InputError).file, join(files.cacheDir, "absent.onnx"));
  t.like(checkTensorRTOptions(good), { inflight: 2, workspaceMiB: null, optimizationLevel: null });
});

test("a frame runs on the engine for its shape and the depth lands in the given out buffer", async (t) => {
  const { session, requests, progress } = loopbackSession();
  t.teardown(() => session.dispose());
  const input = frame(5, 7, 1);
  const out = new Float32Array(35);
  const depth = await session.run(input, { out });
  t.is(depth.data, out);
  t.deepEqual(depth.shape, [5, 7]);
  t.is(depth.dtype, "float32");
  t.deepEqual(Array.from(out), expectedDepth(input));
  t.deepEqual(requests, [{ height: 5, width: 7, channels: 3 }]);
  t.deepEqual(progress, [{ phase: "building TensorRT engine", fraction: 0.5 }]);
  const fresh = await session.run(frame(5, 7, 2));
  t.deepEqual(Array.from(fresh.data), expectedDepth(frame(5, 7, 2)));
  t.is(requests.length, 1, "the engine of a shape is made once");
});

test("many frames in flight each resolve with their own depth", async (t) => {
  const { session, requests } = loopbackSession({ inflight: 2, delayMs: 3 });
  t.teardown(() => session.dispose());
  const frames = Array.from({ length: 12 }, (_, i) => frame(4, 6, i, i % 2 === 0 ? 3 : 4));
  const depths = await Promise.all(frames.map((input) => session.run(input)));
  for (const [i, depth] of depths.entries()) t.deepEqual(Array.from(depth.data), expectedDepth(frames[i]!), `frame ${i}`);
  t.deepEqual(requests, [
    { height: 4, width: 6, channels: 3 },
    { height: 4, width: 6, channels: 4 },
  ]);
});

test("pinned input and output buffers come from the session and are emptied by dispose", async (t) => {
  const { session } = loopbackSession();
  const input = session.createInput(3, 4);
  const depth = session.createOutput(3, 4);
  t.deepEqual(input.shape, [3, 4, 3]);
  t.deepEqual(depth.shape, [3, 4]);
  input.data.set(frame(3, 4, 9).data);
  const result = await session.run(input, { out: depth.data });
  t.is(result.data, depth.data);
  t.deepEqual(Array.from(depth.data), expectedDepth(frame(3, 4, 9)));
  await session.dispose();
  t.is(input.data.length, 0);
  t.is(depth.data.length, 0);
});

test("where external buffers are forbidden, buffers are ordinary memory and runs still work", async (t) => {
  const { session } = loopbackSession({ externalBuffers: false });
  t.teardown(() => session.dispose());
  const input = session.createInput(2, 2, 4);
  input.data.set(frame(2, 2, 3, 4).data);
  const depth = await session.run(input, { out: session.createOutput(2, 2).data });
  t.deepEqual(Array.from(depth.data), expectedDepth(frame(2, 2, 3, 4)));
  await session.dispose();
  t.is(input.data.length, 16, "ordinary buffers are not detached");
});

test("runTimed reports where the time went", async (t) => {
  const { session } = loopbackSession();
  t.teardown(() => session.dispose());
  const { depth, timings } = await session.runTimed(frame(2, 3, 1));
  t.deepEqual(Array.from(depth.data), expectedDepth(frame(2, 3, 1)));
  t.true(timings.totalMs >= timings.hostCopyMs);
  t.true(timings.jsOverheadMs >= 0);
  t.false(timings.graph);
});

test("bad frames and outputs are refused with InputError", async (t) => {
  const { session } = loopbackSession();
  t.teardown(() => session.dispose());
  const floats = ndarray(new Float32Array(6), [1, 2, 3]);
  t.is((await t.throwsAsync(session.run(floats as never), { instanceOf: InputError }))?.message, "Expected dtype uint8 for frame but received float32");
  const twoChannels = ndarray(new Uint8Array(8), [2, 2, 2], "uint8");
  t.is((await t.throwsAsync(session.run(twoChannels), { instanceOf: InputError }))?.message, "Expected 3 or 4 channels for frame.shape[2] but received 2");
  const flat = ndarray(new Uint8Array(12), [12], "uint8");
  t.is((await t.throwsAsync(session.run(flat), { instanceOf: InputError }))?.message, "Expected shape [N, N, N] for frame but received [12]");
  const out = new Float32Array(5);
  t.is(
    (await t.throwsAsync(session.run(frame(2, 3, 0), { out }), { instanceOf: InputError }))?.message,
    "Expected a Float32Array of 6 elements (2 x 3) for options.out but received a Float32Array of length 5",
  );
  await t.throwsAsync(session.run(frame(2, 3, 0), { output: out } as never), { instanceOf: InputError, message: /^Unknown option "output" in options/ });
  t.throws(() => session.createInput(0, 3), { instanceOf: InputError, message: "Expected an integer between 1 and 32768 for height but received 0" });
  t.throws(() => session.createInput(2, 3, 2 as never), { instanceOf: InputError, message: "Expected 3 or 4 channels for channels but received 2" });
});

test("dispose lets running frames finish, rejects waiting ones, and the session refuses further use", async (t) => {
  const { session } = loopbackSession({ inflight: 1, delayMs: 40 });
  const first = frame(3, 3, 1);
  await session.prepare(3, 3);
  const running = session.run(first);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const waiting = session.run(frame(3, 3, 2));
  const disposing = session.dispose();
  t.is(session.dispose(), disposing, "dispose is idempotent");
  t.deepEqual(Array.from((await running).data), expectedDepth(first));
  await t.throwsAsync(waiting, { instanceOf: DisposedError, message: "The TensorRT session has been disposed and cannot be used any more" });
  await disposing;
  await t.throwsAsync(session.run(first), { instanceOf: DisposedError });
  t.throws(() => session.createInput(3, 3), { instanceOf: DisposedError });
  t.throws(() => session.createOutput(3, 3), { instanceOf: DisposedError });
  await t.throwsAsync(session.prepare(3, 3), { instanceOf: DisposedError });
});

test("dispose cancels an engine build in progress and its frames reject with DisposedError", async (t) => {
  let buildSignal: AbortSignal | undefined;
  const { session } = loopbackSession({
    provider: (_geometry, { signal }) => {
      buildSignal = signal;
      return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new AbortError("The TensorRT engine build was cancelled"))));
    },
  });
  const running = session.run(frame(2, 2, 0));
  await new Promise((resolve) => setImmediate(resolve));
  await session.dispose();
  t.true(buildSignal?.aborted);
  await t.throwsAsync(running, { instanceOf: DisposedError });
});

test("a failed engine stays failed for its shape, a cancelled one is retried", async (t) => {
  let calls = 0;
  const failing = loopbackSession({
    provider: async () => {
      calls++;
      throw new RuntimeFailureError("TensorRT could not build an engine from model.onnx");
    },
  });
  t.teardown(() => failing.session.dispose());
  await t.throwsAsync(failing.session.run(frame(2, 2, 0)), { instanceOf: RuntimeFailureError });
  await t.throwsAsync(failing.session.run(frame(2, 2, 1)), { instanceOf: RuntimeFailureError });
  t.is(calls, 1);

  let attempts = 0;
  const cancelled = loopbackSession({
    provider: async (geometry) => {
      if (attempts++ === 0) throw new AbortError("The TensorRT engine build was cancelled");
      return addon().testing.loadLoopbackEngine({ ...geometry, slots: 1 });
    },
  });
  t.teardown(() => cancelled.session.dispose());
  await t.throwsAsync(cancelled.session.run(frame(2, 2, 0)), { instanceOf: AbortError });
  t.deepEqual(Array.from((await cancelled.session.run(frame(2, 2, 5))).data), expectedDepth(frame(2, 2, 5)));
  t.is(attempts, 2);
});

test("a progress callback that throws does not break the build", async (t) => {
  const { session, progress } = loopbackSession({
    onProgress: () => {
      throw new Error("progress bar crashed");
    },
  });
  t.teardown(() => session.dispose());
  const info = await session.prepare(2, 2, 4);
  t.like(info, { height: 2, width: 2, channels: 4, slots: 2, graphs: false });
  t.is(progress.length, 1);
  t.deepEqual(await session.engineInfos(), [info]);
});

test("the TensorRT log is readable for debugging", (t) => {
  const seq = addon().testing.log(1, "tensorrt", "IBuilder::buildSerializedNetwork: Error Code 2: Internal Error (out of memory)");
  const entry = tensorrtLog().find((candidate) => candidate.seq === seq);
  t.like(entry, { severity: "error", source: "tensorrt", message: "IBuilder::buildSerializedNetwork: Error Code 2: Internal Error (out of memory)" });
  t.true(Math.abs(entry!.time - Date.now()) < 60_000);
});
