import test from "ava";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AbortError,
  BackendUnavailableError,
  DisposedError,
  InputError,
  RuntimeFailureError,
} from "../../../lib/errors.js";
import { ADDON_PATH_VARIABLE, loadNativeAddon, loadNativeAddonFrom, type AddonSources, type AddonState, type NativeAddon } from "../../../lib/backends/tensorrt/addon.js";
import type { PlatformPackageState } from "../../../lib/platform/package.js";
import { isNativeError, mapNativeError } from "../../../lib/backends/tensorrt/native_errors.js";
import { repoRoot, temporaryDirectory } from "../../support/fixtures.js";

// Independent evidence of an NVIDIA driver: the kernel module's proc entry.
const hasNvidiaDriver = existsSync("/proc/driver/nvidia/version");

function addon(): NativeAddon {
  const state = loadNativeAddon();
  if (!state.loaded) throw new Error(`the native addon must be built for these tests: ${state.reason}`);
  return state.addon;
}

/** Loads as an installed package would, without the developer's path override. */
function loadFrom(sources: AddonSources): AddonState {
  const override = process.env[ADDON_PATH_VARIABLE];
  delete process.env[ADDON_PATH_VARIABLE];
  try {
    return loadNativeAddonFrom(sources);
  } finally {
    if (override !== undefined) process.env[ADDON_PATH_VARIABLE] = override;
  }
}

/** A platform package found at `dir` holding `addon` (a file name inside it), as findPlatformPackage reports one. */
function platformWith(dir: string, addon?: string): PlatformPackageState {
  return { found: true, package: { name: "@endosynth/linux-x64", dir, version: "0.1.0", ...(addon ? { addon: join(dir, addon) } : {}) } };
}

function thrown(operation: () => unknown): unknown {
  try {
    operation();
  } catch (error) {
    return error;
  }
  throw new Error("expected the operation to throw");
}

test("the addon builds and loads, and reports what it was built with", (t) => {
  const state = loadNativeAddon();
  t.true(state.loaded, state.loaded ? "" : state.reason);
  if (!state.loaded) return;
  t.regex(state.path, /endosynth(\.[a-z]+)?\.node$/);
  const { build } = state.addon.status();
  t.is(build.napiVersion, 8);
  if (build.cuda) t.regex(build.cudaRuntime ?? "", /^\d+\.\d+$/);
  if (build.tensorrt) t.regex(build.tensorrtHeaders ?? "", /^\d+\.\d+\.\d+$/);
});

test("a broken binary in the platform package is explained, and with no source build nothing loads", (t) => {
  const root = temporaryDirectory();
  t.teardown(root.cleanup);
  writeFileSync(join(root.path, "endosynth.node"), "not a shared object");
  const state = loadFrom({ platform: platformWith(root.path, "endosynth.node"), root: root.path });
  t.false(state.loaded);
  if (state.loaded) return;
  t.is(state.attempts.length, 2);
  t.regex(state.attempts[0]!.path, /endosynth\.node$/);
  t.regex(state.attempts[0]!.error, /invalid ELF header|file too short/);
  t.regex(state.attempts[1]!.path, /build\/Release\/endosynth\.node$/);
  t.regex(state.attempts[1]!.error, /^no source build \(npm_config_build_from_source=true npm rebuild endosynth makes one/);
  t.regex(state.reason, /^the native addon could not be loaded \(endosynth\.node: .+; build\/Release\/endosynth\.node: no source build/);
});

test("without a platform package the reason names the package, and an opt-in source build is loaded instead", (t) => {
  const root = temporaryDirectory();
  t.teardown(root.cleanup);
  const missing: PlatformPackageState = { found: false, name: "@endosynth/linux-x64", reason: "@endosynth/linux-x64 is not installed" };
  const none = loadFrom({ platform: missing, root: root.path });
  t.false(none.loaded);
  t.deepEqual(none.attempts[0], { path: "@endosynth/linux-x64", error: "@endosynth/linux-x64 is not installed" });
  mkdirSync(join(root.path, "build", "Release"), { recursive: true });
  copyFileSync(join(repoRoot, "build", "Release", "endosynth.node"), join(root.path, "build", "Release", "endosynth.node"));
  const built = loadFrom({ platform: missing, root: root.path });
  t.true(built.loaded);
  if (built.loaded) t.is(built.path, join(root.path, "build", "Release", "endosynth.node"));
});

test("a platform package without an addon (no TensorRT on that platform) says so", (t) => {
  const root = temporaryDirectory();
  t.teardown(root.cleanup);
  const state = loadFrom({ platform: platformWith(root.path), root: root.path });
  t.false(state.loaded);
  t.regex(state.attempts[0]!.error, /has no native addon \(TensorRT runs on Linux x64 only\)/);
});

(hasNvidiaDriver ? test.skip : test)("without an NVIDIA driver, status carries the failing CUDA call and its error", (t) => {
  const { build, cuda } = addon().status();
  t.true(build.cuda, "CI builds the addon with the CUDA toolkit");
  t.deepEqual(cuda.devices, []);
  t.is(cuda.driverVersion, null);
  t.is(cuda.failure?.call, "cudaGetDeviceCount");
  t.is(cuda.failure?.code, 35);
  t.is(cuda.failure?.name, "cudaErrorInsufficientDriver");
  t.is(cuda.failure?.message, "cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version");
});

test("a CUDA failure maps to RuntimeFailureError naming the call, the error name and code", (t) => {
  const native = thrown(() => addon().testing.cudaFailure(2, "cudaMalloc"));
  t.true(isNativeError(native));
  t.like(native, { nativeKind: "cuda", call: "cudaMalloc", cudaError: 2, cudaErrorName: "cudaErrorMemoryAllocation" });
  const error = mapNativeError(native);
  t.true(error instanceof RuntimeFailureError);
  t.is((error as RuntimeFailureError).code, "ERR_ENDOSYNTH_RUNTIME");
  t.is((error as RuntimeFailureError).key, "cudaMalloc");
  t.is((error as Error).message, "cudaMalloc failed with cudaErrorMemoryAllocation (2): out of memory");
  t.is((error as Error).cause, native);
});

test("an unknown CUDA error code is still reported with its number", (t) => {
  const error = mapNativeError(thrown(() => addon().testing.cudaFailure(12345, "cudaGraphLaunch"))) as Error;
  t.true(error instanceof RuntimeFailureError);
  t.regex(error.message, /^cudaGraphLaunch failed with .+ \(12345\): /);
});

test("a TensorRT failure quotes the errors and warnings TensorRT logged while it ran", (t) => {
  const native = addon();
  const mark = native.testing.log(3, "tensorrt", "before the operation");
  native.testing.log(3, "tensorrt", "[MemUsageChange] Init CUDA: CPU +2, GPU +0, now: CPU 20, GPU 0 (MiB)");
  native.testing.log(2, "tensorrt", "Unsupported ONNX data type: UINT16");
  native.testing.log(1, "tensorrt", "ModelImporter.cpp:951: ERROR: input: is not a valid input");
  const raw = thrown(() => native.testing.tensorrtFailure("IParser::parseFromFile", "TensorRT could not parse model.onnx", mark));
  t.deepEqual((raw as { tensorrtLog: string[] }).tensorrtLog, [
    "warning: Unsupported ONNX data type: UINT16",
    "error: ModelImporter.cpp:951: ERROR: input: is not a valid input",
  ]);
  const error = mapNativeError(raw) as RuntimeFailureError;
  t.true(error instanceof RuntimeFailureError);
  t.is(error.key, "IParser::parseFromFile");
  t.is(
    error.message,
    "TensorRT could not parse model.onnx; TensorRT logged: warning: Unsupported ONNX data type: UINT16 | error: ModelImporter.cpp:951: ERROR: input: is not a valid input",
  );
});

test("each kind of native failure maps to its package error class", (t) => {
  const native = addon();
  const cases = [
    ["input", InputError, "ERR_ENDOSYNTH_INPUT"],
    ["disposed", DisposedError, "ERR_ENDOSYNTH_DISPOSED"],
    ["aborted", AbortError, "ERR_ENDOSYNTH_ABORTED"],
    ["unavailable", BackendUnavailableError, "ERR_ENDOSYNTH_BACKEND_UNAVAILABLE"],
    ["plan-rejected", RuntimeFailureError, "ERR_ENDOSYNTH_RUNTIME"],
    ["tensorrt", RuntimeFailureError, "ERR_ENDOSYNTH_RUNTIME"],
    ["internal", RuntimeFailureError, "ERR_ENDOSYNTH_RUNTIME"],
  ] as const;
  for (const [kind, type, code] of cases) {
    const error = mapNativeError(thrown(() => native.testing.failure(kind, "someCall", `${kind} happened`)));
    t.true(error instanceof type, kind);
    t.is((error as InputError).code, code, kind);
  }
  t.is((mapNativeError(thrown(() => native.testing.failure("disposed", "run", "gone")), "The model") as Error).message,
    "The model has been disposed and cannot be used any more");
  t.is((mapNativeError(thrown(() => native.testing.failure("internal", "run", "slot bookkeeping"))) as Error).message,
    "internal error in the native addon: slot bookkeeping");
});

test("errors that are not native failures pass through unchanged", (t) => {
  const error = new TypeError("plain");
  t.is(mapNativeError(error), error);
  t.false(isNativeError(error));
});

test("the log keeps only its newest entries, in order, with increasing sequence numbers", (t) => {
  const native = addon();
  const { capacity } = native.logMessages();
  const first = native.testing.log(3, "endosynth", "entry 0");
  for (let i = 1; i < capacity + 10; i++) native.testing.log(3, "endosynth", `entry ${i}`);
  const { entries, lastSeq } = native.logMessages(0);
  t.is(entries.length, capacity);
  t.is(lastSeq, first + capacity + 9);
  t.is(entries.at(-1)!.message, `entry ${capacity + 9}`);
  t.is(entries[0]!.message, "entry 10");
  t.true(entries.every((entry, i) => i === 0 || entry.seq === entries[i - 1]!.seq + 1));
  t.deepEqual(native.logMessages(lastSeq - 2).entries.map((entry) => entry.message), [`entry ${capacity + 8}`, `entry ${capacity + 9}`]);
  t.like(entries.at(-1), { severity: "info", source: "endosynth" });
});

(hasNvidiaDriver ? test.skip : test)("the CUDA self-test rejects with the driver error where there is no driver", async (t) => {
  const error = await t.throwsAsync(addon().cudaSelfTest());
  t.like(error, { nativeKind: "cuda", cudaErrorName: "cudaErrorInsufficientDriver", cudaError: 35 });
});

(hasNvidiaDriver ? test : test.skip)("the CUDA self-test round-trips pinned memory through a captured CUDA graph", async (t) => {
  const result = await addon().cudaSelfTest(1 << 20);
  t.is(result.bytes, 1 << 20);
  t.true(result.device.length > 0);
  t.true(result.graphMs >= 0);
});

(hasNvidiaDriver ? test.skip : test)("pinned host memory needs a driver and says so", (t) => {
  const arena = new (addon().HostArena)({ pinned: true });
  const error = mapNativeError(thrown(() => arena.allocate(64))) as RuntimeFailureError;
  t.true(error instanceof RuntimeFailureError);
  t.regex(error.message, /^cudaHostAlloc failed with cudaErrorInsufficientDriver \(35\)/);
});

test("host buffers are external ArrayBuffers that dispose() detaches", (t) => {
  const arena = new (addon().HostArena)({ pinned: false });
  const buffer = arena.allocate(1000)!;
  t.is(buffer.byteLength, 1000);
  const view = new Uint8Array(buffer);
  view.fill(7);
  t.is(view[999], 7);
  t.is(arena.liveBlocks, 1);
  arena.dispose();
  t.is(buffer.byteLength, 0);
  t.is(view.length, 0);
  arena.dispose();
  const error = mapNativeError(thrown(() => arena.allocate(10)));
  t.true(error instanceof DisposedError);
});

test("where external buffers are forbidden the arena hands out none, so callers fall back to copies", (t) => {
  const arena = new (addon().HostArena)({ pinned: false, externalBuffers: false });
  t.is(arena.allocate(1000), null);
  arena.dispose();
});

test("building or loading an engine without TensorRT rejects with the reason", async (t) => {
  const native = addon();
  const { build, tensorrt } = native.status();
  const expected = build.tensorrt ? `TensorRT is unavailable: ${tensorrt.failure}` : "the native addon was built without TensorRT headers";
  t.false(tensorrt.loaded);
  const job = native.buildEngine({ onnxPath: "/nonexistent.onnx", precision: "fp16", height: 8, width: 8, channels: 3, workspaceMiB: 0, optimizationLevel: -1 });
  const building = await t.throwsAsync(job.promise);
  t.like(building, { nativeKind: "unavailable", message: expected });
  const loading = await t.throwsAsync(native.loadEngine(new Uint8Array(16), { height: 8, width: 8, channels: 3, slots: 1 }));
  t.like(loading, { nativeKind: "unavailable", message: expected });
  t.true(mapNativeError(loading) instanceof BackendUnavailableError);
});

test("an engine runs frames on its slots and returns each frame's own result", async (t) => {
  const engine = await addon().testing.loadLoopbackEngine({ height: 2, width: 3, channels: 3, slots: 2 });
  t.like(engine.info(), { height: 2, width: 3, channels: 3, slots: 2, disposed: false });
  const input = Uint8Array.from({ length: 18 }, (_, i) => i * 10);
  const output = new Float32Array(6);
  const timings = await engine.run(1, input, output);
  t.deepEqual(Array.from(output), [0, 3, 6, 9, 12, 15].map((i) => 65536 * input[i]! + 256 * input[i + 1]! + input[i + 2]!));
  t.like(timings, { graph: false });
  await engine.dispose();
});

test("an engine runs frames whose input and output live in SharedArrayBuffers", async (t) => {
  const engine = await addon().testing.loadLoopbackEngine({ height: 2, width: 2, channels: 3, slots: 1 });
  t.teardown(() => engine.dispose());
  const shared = new SharedArrayBuffer(64);
  const input = new Uint8Array(shared, 4, 12).map((_, i) => 20 + i);
  const output = new Float32Array(new SharedArrayBuffer(32), 16, 4);
  await engine.run(0, input, output);
  t.deepEqual(Array.from(output), [0, 3, 6, 9].map((i) => 65536 * input[i]! + 256 * input[i + 1]! + input[i + 2]!));
});

test("an engine refuses a busy slot, a slot it does not have and buffers of the wrong size", async (t) => {
  const engine = await addon().testing.loadLoopbackEngine({ height: 4, width: 4, channels: 3, slots: 2, delayMs: 30 });
  const running = engine.run(0, new Uint8Array(48), new Float32Array(16));
  t.is(engine.busySlots, 1);
  t.like(thrown(() => engine.run(0, new Uint8Array(48), new Float32Array(16))), { nativeKind: "input", message: "slot 0 is already running a frame" });
  t.like(thrown(() => engine.run(2, new Uint8Array(48), new Float32Array(16))), { nativeKind: "input" });
  t.like(thrown(() => engine.run(1, new Uint8Array(47), new Float32Array(16))), { nativeKind: "input", message: "input has 47 bytes but the engine needs 48" });
  t.like(thrown(() => engine.run(1, new Uint8Array(48), new Float32Array(15))), { nativeKind: "input", message: "output has 60 bytes but the engine needs 64" });
  await running;
  t.is(engine.busySlots, 0);
  await engine.dispose();
});

test("dispose lets a running frame finish, then refuses new ones", async (t) => {
  const engine = await addon().testing.loadLoopbackEngine({ height: 2, width: 2, channels: 3, slots: 1, delayMs: 50 });
  const input = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
  const output = new Float32Array(4);
  const running = engine.run(0, input, output);
  const disposing = engine.dispose();
  await running;
  t.is(output[0], 65536 * 1 + 256 * 2 + 3);
  await disposing;
  await engine.dispose();
  t.true(engine.info().disposed);
  const error = mapNativeError(thrown(() => engine.run(0, input, output)));
  t.true(error instanceof DisposedError);
});

/** Runs an ES module snippet in a fresh Node process (with the repository's TypeScript loader). */
function runScript(source: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import=tsx", "--input-type=module", "-e", source], { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const LOAD = `import { loadNativeAddon } from "./lib/backends/tensorrt/addon.ts"; const state = loadNativeAddon(); if (!state.loaded) throw new Error(state.reason); const native = state.addon;`;

test("a frame in flight keeps the process alive until it resolves, an idle engine does not", async (t) => {
  const result = await runScript(`${LOAD}
    const engine = await native.testing.loadLoopbackEngine({ height: 2, width: 2, channels: 3, slots: 1, delayMs: 300 });
    const output = new Float32Array(4);
    engine.run(0, new Uint8Array(12).fill(1), output).then(() => console.log("resolved", output[0]));`);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout.trim(), `resolved ${65536 + 256 + 1}`);
});

test("mirrors the addon's log to util.debuglog('endosynth')", async (t) => {
  const result = await runScript(`${LOAD}
    const { mirrorNativeLog } = await import("./lib/backends/tensorrt/native_log.ts");
    native.testing.log(2, "tensorrt", "Weights of layer head.conv are not fp16-representable");
    mirrorNativeLog(native);
    mirrorNativeLog(native);`, { NODE_DEBUG: "endosynth" });
  t.is(result.code, 0, result.stderr);
  const lines = result.stderr.split("\n").filter((line) => line.includes("not fp16-representable"));
  t.is(lines.length, 1, "each entry is mirrored once");
  t.regex(lines[0]!, /^ENDOSYNTH \d+: tensorrt warning: Weights of layer head\.conv are not fp16-representable$/);
});
