/**
 * The on-disk cache of TensorRT engines and timing caches, under `<cacheDir>/tensorrt/`.
 *
 * A serialized engine (a "plan") only works with the TensorRT version and the GPU it was built
 * on, and only for the input shape, precision and builder options it was built with. Each plan
 * file therefore starts with our own header naming all of these, plus the plan's length and
 * SHA-256, so a truncated, corrupt, stale or foreign file is rejected before TensorRT ever sees
 * it and the engine is rebuilt; it is never trusted.
 *
 * File layout (little-endian):
 * ```text
 *  0   8 bytes  magic: "ENDOTRTP" (plan) or "ENDOTRTC" (timing cache)
 *  8   u32      cache format version ({@link CACHE_FORMAT_VERSION})
 * 12   u32      n = byte length of the key
 * 16   n bytes  key: UTF-8 JSON of the key fields
 * 16+n u64      payload length
 * 24+n 32 bytes SHA-256 of the payload
 * 56+n          payload (the TensorRT plan or timing cache)
 * ```
 * File names leave the TensorRT version out on purpose: after a TensorRT upgrade the header
 * marks the old plan stale and the rebuilt one replaces it in place, instead of piling up.
 * Every write is atomic (temporary file + rename), so readers never see half a file.
 *
 * @example
 * ```ts
 * const fields = { onnxHash, tensorrtVersion: "10.16.0", gpuName: "NVIDIA H100", computeCapability: "9.0",
 *   precision: "fp16", inputShape: [420, 742, 3], workspaceMiB: null, optimizationLevel: null } as const;
 * const path = planPath(cacheDir, fields);
 * const cached = await readPlanFile(path, fields);
 * if (cached.status !== "hit") await writePlanFile(path, fields, await buildPlan());
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, open, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { withAtomicFile } from "../io/atomic.js";

/** Version of the header layout; a file with another one is rebuilt. */
export const CACHE_FORMAT_VERSION = 1;
/** Magic of plan files. */
export const PLAN_MAGIC = "ENDOTRTP";
/** Magic of timing-cache files. */
export const TIMING_CACHE_MAGIC = "ENDOTRTC";

const FIXED_HEADER_BYTES = 16;
const TRAILER_BYTES = 8 + 32;

/** Everything a plan depends on. */
export interface EngineKeyFields {
  /** Hash of the ONNX model (and its external data) the plan was built from. */
  readonly onnxHash: string;
  /** TensorRT library version, e.g. `"10.16.0"`. */
  readonly tensorrtVersion: string;
  /** GPU name as CUDA reports it, e.g. `"NVIDIA GeForce RTX 4090"`. */
  readonly gpuName: string;
  /** `"major.minor"`, e.g. `"8.9"`. */
  readonly computeCapability: string;
  readonly precision: "fp16" | "fp32";
  /** Frame shape [height, width, channels] of the optimisation profile. */
  readonly inputShape: readonly [number, number, number];
  /** Builder workspace limit; null: TensorRT's default. */
  readonly workspaceMiB: number | null;
  /** Builder optimisation level 0-5; null: TensorRT's default. */
  readonly optimizationLevel: number | null;
}

/** What a timing cache depends on (it is shared by every engine built on one GPU). */
export interface TimingCacheKeyFields {
  readonly tensorrtVersion: string;
  readonly gpuName: string;
  readonly computeCapability: string;
}

/** The outcome of reading a cache file. */
export type CacheRead =
  | { readonly status: "hit"; readonly payload: Uint8Array }
  | { readonly status: "missing" }
  | { readonly status: "rejected"; readonly reason: string };

function engineKeyObject(fields: EngineKeyFields): Record<string, unknown> {
  return {
    onnxHash: fields.onnxHash,
    tensorrtVersion: fields.tensorrtVersion,
    gpuName: fields.gpuName,
    computeCapability: fields.computeCapability,
    precision: fields.precision,
    inputShape: [...fields.inputShape],
    workspaceMiB: fields.workspaceMiB,
    optimizationLevel: fields.optimizationLevel,
  };
}

function timingKeyObject(fields: TimingCacheKeyFields): Record<string, unknown> {
  return { tensorrtVersion: fields.tensorrtVersion, gpuName: fields.gpuName, computeCapability: fields.computeCapability };
}

/** A file-name-safe rendering of a free-form value. */
function slug(value: string, maxLength: number): string {
  const safe = value.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return (safe || "unnamed").slice(0, maxLength);
}

/** The folder holding every TensorRT cache file. */
export function tensorrtCacheDir(cacheDir: string): string {
  return join(cacheDir, "tensorrt");
}

/**
 * Where the plan for `fields` lives: one file per model, shape, precision, GPU and builder
 * options, e.g. `<cacheDir>/tensorrt/3f2a..-420x742x3-fp16-NVIDIA_H100-sm90-wsauto-optauto.plan`.
 */
export function planPath(cacheDir: string, fields: EngineKeyFields): string {
  const [height, width, channels] = fields.inputShape;
  const options = `ws${fields.workspaceMiB ?? "auto"}-opt${fields.optimizationLevel ?? "auto"}`;
  const name = [
    slug(fields.onnxHash, 16),
    `${height}x${width}x${channels}`,
    fields.precision,
    slug(fields.gpuName, 40),
    `sm${fields.computeCapability.replace(".", "")}`,
    options,
  ].join("-");
  return join(tensorrtCacheDir(cacheDir), `${name}.plan`);
}

/** Where the timing cache of one GPU lives. */
export function timingCachePath(cacheDir: string, fields: TimingCacheKeyFields): string {
  return join(tensorrtCacheDir(cacheDir), `timing-${slug(fields.gpuName, 40)}-sm${fields.computeCapability.replace(".", "")}.cache`);
}

/** Header + payload of a cache file, as the parts to write in order. */
export function encodeCacheFile(magic: string, key: Record<string, unknown>, payload: Uint8Array): Uint8Array[] {
  const keyBytes = Buffer.from(JSON.stringify(key), "utf8");
  const header = Buffer.alloc(FIXED_HEADER_BYTES + keyBytes.length + TRAILER_BYTES);
  header.write(magic, 0, 8, "latin1");
  header.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
  header.writeUInt32LE(keyBytes.length, 12);
  keyBytes.copy(header, FIXED_HEADER_BYTES);
  header.writeBigUInt64LE(BigInt(payload.byteLength), FIXED_HEADER_BYTES + keyBytes.length);
  createHash("sha256").update(payload).digest().copy(header, FIXED_HEADER_BYTES + keyBytes.length + 8);
  return [header, payload];
}

function describeDifferences(stored: Record<string, unknown>, expected: Record<string, unknown>): string {
  const differences: string[] = [];
  for (const [name, value] of Object.entries(expected)) {
    const found = JSON.stringify(stored[name]);
    if (found !== JSON.stringify(value)) differences.push(`${name} ${found ?? "missing"} (now ${JSON.stringify(value)})`);
  }
  return differences.length > 0 ? differences.join(", ") : "unknown key fields";
}

/**
 * Checks a cache file's header against the expected magic and key and returns its payload, or
 * why the file cannot be used.
 */
export function decodeCacheFile(bytes: Uint8Array, magic: string, expected: Record<string, unknown>): CacheRead {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < FIXED_HEADER_BYTES) return { status: "rejected", reason: `truncated: ${buffer.length} bytes, shorter than the header` };
  if (buffer.toString("latin1", 0, 8) !== magic) return { status: "rejected", reason: `not an endosynth ${magic === PLAN_MAGIC ? "TensorRT plan" : "timing cache"} file (magic ${JSON.stringify(buffer.toString("latin1", 0, 8))})` };
  const version = buffer.readUInt32LE(8);
  if (version !== CACHE_FORMAT_VERSION) return { status: "rejected", reason: `stale: cache format version ${version}, expected ${CACHE_FORMAT_VERSION}` };
  const keyLength = buffer.readUInt32LE(12);
  const payloadStart = FIXED_HEADER_BYTES + keyLength + TRAILER_BYTES;
  if (buffer.length < payloadStart) return { status: "rejected", reason: `truncated: ${buffer.length} bytes, shorter than the ${payloadStart}-byte header` };
  let stored: Record<string, unknown>;
  try {
    stored = JSON.parse(buffer.toString("utf8", FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + keyLength)) as Record<string, unknown>;
  } catch {
    return { status: "rejected", reason: "corrupt: the header's key is not JSON" };
  }
  if (JSON.stringify(stored) !== JSON.stringify(expected)) {
    return { status: "rejected", reason: `stale: built for ${describeDifferences(stored, expected)}` };
  }
  const payloadLength = buffer.readBigUInt64LE(FIXED_HEADER_BYTES + keyLength);
  const actualLength = BigInt(buffer.length - payloadStart);
  if (payloadLength !== actualLength) {
    return { status: "rejected", reason: `truncated: the header promises ${payloadLength} payload bytes but the file holds ${actualLength}` };
  }
  const payload = buffer.subarray(payloadStart);
  const checksum = buffer.subarray(FIXED_HEADER_BYTES + keyLength + 8, payloadStart);
  if (!createHash("sha256").update(payload).digest().equals(checksum)) {
    return { status: "rejected", reason: "corrupt: the payload's SHA-256 does not match the header" };
  }
  return { status: "hit", payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) };
}

async function readCacheFile(path: string, magic: string, expected: Record<string, unknown>): Promise<CacheRead> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { status: "missing" };
    return { status: "rejected", reason: `unreadable: ${(error as Error).message}` };
  }
  const read = decodeCacheFile(bytes, magic, expected);
  return read.status === "rejected" ? { status: "rejected", reason: `${path} is ${read.reason}` } : read;
}

async function writeCacheFile(path: string, parts: readonly Uint8Array[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await withAtomicFile(path, async (temporary) => {
    const handle = await open(temporary, "wx");
    try {
      for (const part of parts) await handle.write(part);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Reads and validates the plan at `path` for `fields`. */
export function readPlanFile(path: string, fields: EngineKeyFields): Promise<CacheRead> {
  return readCacheFile(path, PLAN_MAGIC, engineKeyObject(fields));
}

/** Writes `plan` with its header to `path`, atomically (creating the folder if needed). */
export function writePlanFile(path: string, fields: EngineKeyFields, plan: Uint8Array): Promise<void> {
  return writeCacheFile(path, encodeCacheFile(PLAN_MAGIC, engineKeyObject(fields), plan));
}

/** Reads and validates the timing cache at `path` for `fields`. */
export function readTimingCache(path: string, fields: TimingCacheKeyFields): Promise<CacheRead> {
  return readCacheFile(path, TIMING_CACHE_MAGIC, timingKeyObject(fields));
}

/** Writes a serialized TensorRT timing cache with its header to `path`, atomically. */
export function writeTimingCache(path: string, fields: TimingCacheKeyFields, cache: Uint8Array): Promise<void> {
  return writeCacheFile(path, encodeCacheFile(TIMING_CACHE_MAGIC, timingKeyObject(fields), cache));
}
