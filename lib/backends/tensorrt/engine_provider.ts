/**
 * Engines for a frame shape: a cached plan when one fits this model, TensorRT version and GPU,
 * else a build (minutes, with progress, cancellable) that is then cached for the next session.
 * @module
 */
import { debuglog } from "node:util";
import { AbortError, DisposedError } from "../../errors.js";
import { type NativeAddon, type NativeEngine } from "./addon.js";
import { isNativeError, mapNativeError } from "./native_errors.js";
import { mirrorNativeLog } from "./native_log.js";
import type { Progress } from "../../progress.js";
import { planPath, readPlanFile, readTimingCache, timingCachePath, writePlanFile, writeTimingCache, type EngineKeyFields, type TimingCacheKeyFields } from "../../cache/engine_cache.js";


import type { CheckedOptions } from "./options.js";

const debug = debuglog("endosynth");

/** Frame geometry of one engine. */
export interface FrameGeometry {
  height: number;
  width: number;
  channels: 3 | 4;
}

/** What a session needs to obtain an engine for a frame shape (built, loaded from cache, or a test double). @internal */
export type EngineProvider = (geometry: FrameGeometry, context: { onProgress: (progress: Progress) => void; signal: AbortSignal }) => Promise<NativeEngine>;


/** The engine provider of a real session: plan cache first, else build (and cache), then load. */
export function cachedEngineProvider(addon: NativeAddon, options: CheckedOptions, identity: TimingCacheKeyFields): EngineProvider {
  return async (geometry, { onProgress, signal }) => {
    const fields: EngineKeyFields = {
      onnxHash: options.onnxHash,
      ...identity,
      precision: options.precision,
      inputShape: [geometry.height, geometry.width, geometry.channels],
      workspaceMiB: options.workspaceMiB,
      optimizationLevel: options.optimizationLevel,
    };
    const load = async (plan: Uint8Array): Promise<NativeEngine> => {
      try {
        return await addon.loadEngine(plan, { ...geometry, slots: options.inflight });
      } finally {
        mirrorNativeLog(addon);
      }
    };
    const path = planPath(options.cacheDir, fields);
    const cached = await readPlanFile(path, fields);
    if (cached.status === "hit") {
      onProgress({ phase: "loading TensorRT engine", detail: path });
      try {
        return await load(cached.payload);
      } catch (error) {
        if (!isNativeError(error) || error.nativeKind !== "plan-rejected") throw mapNativeError(error);
        debug("TensorRT rejected the cached plan %s (%s); rebuilding it", path, error.message);
      }
    } else if (cached.status === "rejected") {
      debug("not using %s: %s", path, cached.reason);
    }

    if (signal.aborted) throw signal.reason instanceof DisposedError ? signal.reason : new AbortError("The TensorRT engine build was aborted");
    const timingPath = timingCachePath(options.cacheDir, identity);
    const timing = await readTimingCache(timingPath, identity);
    if (timing.status === "rejected") debug("starting a fresh timing cache: %s", timing.reason);
    onProgress({ phase: "building TensorRT engine", fraction: 0, detail: `${options.onnxPath} for ${geometry.height}x${geometry.width}x${geometry.channels} frames` });
    const job = addon.buildEngine(
      {
        onnxPath: options.onnxPath,
        precision: options.precision,
        ...geometry,
        workspaceMiB: options.workspaceMiB ?? 0,
        optimizationLevel: options.optimizationLevel ?? -1,
        ...(timing.status === "hit" ? { timingCache: timing.payload } : {}),
      },
      (progress) => {
        mirrorNativeLog(addon);
        onProgress({ phase: progress.phase, ...(progress.fraction !== undefined ? { fraction: progress.fraction } : {}), ...(progress.detail ? { detail: progress.detail } : {}) });
      },
    );
    const cancel = () => job.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    // An abort while the timing cache was read came before the listener: the build must stop too,
    // or dispose() would wait for it to finish.
    if (signal.aborted) cancel();
    let built: { plan: Uint8Array; timingCache: Uint8Array };
    try {
      built = await job.promise;
    } catch (error) {
      throw mapNativeError(error);
    } finally {
      signal.removeEventListener("abort", cancel);
      mirrorNativeLog(addon);
    }
    onProgress({ phase: "saving TensorRT engine", fraction: 1, detail: path });
    try {
      await writePlanFile(path, fields, built.plan);
      if (built.timingCache.byteLength > 0) await writeTimingCache(timingPath, identity, built.timingCache);
    } catch (error) {
      // The engine is built: a cache that cannot be written (disk full, read-only) costs the next
      // session a rebuild, not this one the engine it waited minutes for.
      const reason = error instanceof Error ? error.message : String(error);
      debug("could not cache the TensorRT engine at %s: %s", path, reason);
      onProgress({ phase: "saving TensorRT engine", fraction: 1, detail: `not cached: ${reason}` });
    }
    try {
      return await load(built.plan);
    } catch (error) {
      throw mapNativeError(error);
    }
  };
}
