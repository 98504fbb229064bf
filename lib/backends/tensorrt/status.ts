/**
 * Whether TensorRT can run here, and why not: {@link tensorrtStatus} turns what loading the addon
 * found and what the addon reports into one verdict with a one-sentence reason (`endosynth info`
 * prints it; `backend: "auto"` falls back to ONNX Runtime on it).
 * @module
 */
import { loadNativeAddon, type AddonLoadAttempt, type AddonState, type NativeLogEntry, type NativeStatus } from "./addon.js";
import { mirrorNativeLog, nativeLogEntries } from "./native_log.js";



/** One CUDA device. */
export interface TensorRTDevice {
  /** CUDA device ordinal (0 is the device TensorRT uses). */
  index: number;
  /** Product name as the driver reports it, e.g. `"NVIDIA GeForce RTX 4090"`. */
  name: string;
  /** `"major.minor"`, e.g. `"8.9"`. */
  computeCapability: string;
  /** Total device memory, in bytes. */
  memoryBytes: number;
}

/** Whether TensorRT can run here, and everything that decides it. */
export interface TensorRTStatus {
  /** True when the addon loaded, a CUDA device is present and the TensorRT libraries opened. */
  available: boolean;
  /**
   * One sentence: why TensorRT is unavailable, or what will run, e.g.
   * `"no NVIDIA driver: cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): ..."`.
   */
  reason: string;
  /** The native addon: whether it loaded, from where, and what it was built with. */
  addon: {
    /** True when a binary of the addon was found and loaded into this process. */
    loaded: boolean;
    /** The binary that was loaded. */
    path?: string;
    /** Every place a binary was looked for and why it was not used. */
    attempts: readonly AddonLoadAttempt[];
    /** The addon was compiled with CUDA (false when no CUDA toolkit was found at build time, or it did not load). */
    builtWithCuda: boolean;
    /** The addon was compiled against TensorRT headers (false when it was built without them, or did not load). */
    builtWithTensorRT: boolean;
    /** CUDA runtime version linked into the addon, e.g. `"13.0"` (the driver must support it). */
    cudaRuntime?: string;
    /** TensorRT headers the addon was compiled against, e.g. `"10.16.0"`. */
    tensorrtHeaders?: string;
  };
  /** The CUDA driver and devices, as the addon found them. */
  cuda: {
    /** Highest CUDA version the installed driver supports. */
    driverVersion?: string;
    /** Version of the CUDA runtime in use, e.g. `"13.0"` (absent when the addon has no CUDA). */
    runtimeVersion?: string;
    /** The CUDA devices found, by ordinal (empty when there is none or CUDA failed). */
    devices: TensorRTDevice[];
    /** The CUDA failure met while probing, e.g. `"cudaGetDeviceCount failed with ..."`. */
    error?: string;
  };
  /** The TensorRT libraries, opened at run time. */
  tensorrt: {
    /** Version of the TensorRT library that was opened, e.g. `"10.16.0"`. */
    version?: string;
    /** The file `libnvinfer` was loaded from. */
    libraryPath?: string;
    /** The file `libnvonnxparser` was loaded from. */
    parserLibraryPath?: string;
    /** Why the TensorRT libraries cannot be used. */
    error?: string;
  };
}

const CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
const CUDA_ERROR_NO_DEVICE = 100;

/**
 * The availability verdict and its one-sentence reason, from what loading the addon found and
 * what the addon reports. Pure, so every branch is testable without the hardware.
 * @internal
 */
export function describeTensorRTAvailability(addon: { loaded: boolean; reason?: string }, native: NativeStatus | undefined): { available: boolean; reason: string } {
  if (!addon.loaded || native === undefined) return { available: false, reason: addon.reason ?? "the native addon could not be loaded" };
  const { build, cuda, tensorrt } = native;
  if (!build.cuda) {
    return { available: false, reason: "the native addon was built without CUDA (no CUDA toolkit at build time) — use the prebuilt one (@endosynth/linux-x64), or rebuild it from source with the toolkit and TensorRT's headers: `CUDAToolkit_ROOT=<toolkit dir> TensorRT_INCLUDE_DIR=<TensorRT include dir> npm_config_build_from_source=true npm rebuild endosynth`" };
  }
  if (cuda.failure) {
    const { failure } = cuda;
    if (failure.code === CUDA_ERROR_INSUFFICIENT_DRIVER && cuda.driverVersion) {
      return { available: false, reason: `the NVIDIA driver supports CUDA ${cuda.driverVersion} but the addon links the CUDA ${build.cudaRuntime} runtime: ${failure.message} — update the driver or rebuild the addon against an older CUDA toolkit` };
    }
    if (failure.code === CUDA_ERROR_INSUFFICIENT_DRIVER) return { available: false, reason: `no NVIDIA driver: ${failure.message}` };
    if (failure.code === CUDA_ERROR_NO_DEVICE) return { available: false, reason: `no CUDA device: ${failure.message}` };
    return { available: false, reason: `CUDA cannot be used: ${failure.message}` };
  }
  if (cuda.devices.length === 0) return { available: false, reason: "no CUDA device: the NVIDIA driver reports no GPU" };
  if (!build.tensorrt) {
    return { available: false, reason: "the native addon was built without TensorRT headers — use the prebuilt one (@endosynth/linux-x64), or rebuild it from source with them: `TensorRT_INCLUDE_DIR=<TensorRT include dir> npm_config_build_from_source=true npm rebuild endosynth`" };
  }
  if (!tensorrt.loaded) {
    return { available: false, reason: `TensorRT is unavailable: ${tensorrt.failure ?? "its libraries could not be loaded"} — install TensorRT ${build.tensorrtMajor} and make it visible to the dynamic loader (LD_LIBRARY_PATH)` };
  }
  const device = cuda.devices[0]!;
  return { available: true, reason: `TensorRT ${tensorrt.version} on ${device.name} (compute capability ${device.computeCapability})` };
}

function tensorrtError(native: NativeStatus): string | undefined {
  if (!native.build.tensorrt) return "the native addon was built without TensorRT headers";
  return native.tensorrt.loaded ? undefined : native.tensorrt.failure;
}

/** {@link TensorRTStatus} from what loading the addon found. */
export function statusFrom(state: AddonState): TensorRTStatus {
  const native = state.loaded ? state.addon.status() : undefined;
  if (state.loaded) mirrorNativeLog(state.addon);
  const verdict = describeTensorRTAvailability(state.loaded ? { loaded: true } : { loaded: false, reason: state.reason }, native);
  return {
    ...verdict,
    addon: {
      loaded: state.loaded,
      path: state.loaded ? state.path : undefined,
      attempts: state.attempts,
      builtWithCuda: native?.build.cuda ?? false,
      builtWithTensorRT: native?.build.tensorrt ?? false,
      cudaRuntime: native?.build.cudaRuntime ?? undefined,
      tensorrtHeaders: native?.build.tensorrtHeaders ?? undefined,
    },
    cuda: {
      driverVersion: native?.cuda.driverVersion ?? undefined,
      runtimeVersion: native?.cuda.runtimeVersion ?? undefined,
      devices: native?.cuda.devices.map((device) => ({ ...device })) ?? [],
      error: native?.cuda.failure?.message,
    },
    tensorrt: {
      version: native?.tensorrt.version ?? undefined,
      libraryPath: native?.tensorrt.libraryPath ?? undefined,
      parserLibraryPath: native?.tensorrt.parserLibraryPath ?? undefined,
      error: native ? tensorrtError(native) : "the native addon is not loaded",
    },
  };
}

/**
 * Whether TensorRT can run on this machine, and why not. Never throws; cheap enough to call
 * whenever needed (the TensorRT libraries are opened once per process).
 * @example
 * ```ts
 * const status = tensorrtStatus();
 * if (!status.available) console.log(`Using ONNX Runtime: ${status.reason}`);
 * ```
 */
export function tensorrtStatus(): TensorRTStatus {
  return statusFrom(loadNativeAddon());
}

/**
 * What TensorRT (and the addon) logged lately, oldest first: the last few hundred messages of
 * severity info and above, for debugging a failed build. Empty when the addon is not loaded.
 * `NODE_DEBUG=endosynth` shows the same messages as they happen.
 */
export function tensorrtLog(): NativeLogEntry[] {
  const state = loadNativeAddon();
  return state.loaded ? nativeLogEntries(state.addon) : [];
}
