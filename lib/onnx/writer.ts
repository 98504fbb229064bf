/**
 * Writes a {@link Graph} as an ONNX model: the graph in `<model>.onnx`, every initializer but the
 * tiny ones in an external data file beside it (64-byte aligned, referenced by
 * `location`/`offset`/`length` entries). Tensors are streamed to disk one by one straight from
 * their arrays: no buffer ever holds the whole model.
 *
 * The pair appears atomically. The data file is `<model>.onnx.data`, or, when a file of that name
 * is there already (the data of the model being replaced), `<model>.onnx.<id>.data`; the model
 * file then replaces the old one in one rename. A kill at any instant leaves the old model with its
 * old data, or the new model with its new data. The replaced data file, and any left by a write
 * killed between its two renames, are removed afterwards; writes to one path take turns (a lock
 * file beside it).
 *
 * The model's metadata names its data file with that file's size and SHA-256
 * ({@link EXTERNAL_DATA_KEYS}): the model file alone then identifies the weights (engine caches
 * key on its hash), and a data file that does not belong to it (replaced, truncated, left from
 * another conversion) can be detected.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { basename, dirname, join } from "node:path";
import { AbortError, InputError } from "../errors.js";
import { encodeFloat16 } from "../ndarray/float16.js";
import { ITEM_SIZE, size, type NdArray } from "../ndarray/ndarray.js";
import type { ProgressCallback } from "../progress.js";
import { readdir, rm } from "node:fs/promises";
import { removeStaleTemporaries, withAtomicFile, writeFileAtomicSync } from "../io/atomic.js";
import { withLock } from "../io/lock.js";
import { readOnnxMetadata } from "./metadata.js";
import type { Graph, Initializer } from "./graph.js";
import { encodeModel, type TensorSpec } from "./onnx_proto.js";

/** What the writer reads of a graph: a {@link Graph}, or the result of a pass over one. */
export type OnnxGraph = Pick<Graph, "name" | "nodes" | "initializers" | "inputs" | "outputs">;

/** Alignment of every tensor in the external data file (what ONNX's own external-data writer uses for mmap-friendly files). */
export const EXTERNAL_DATA_ALIGNMENT = 64;
/** Tensors of at least this many bytes go to the external data file by default. */
export const DEFAULT_EXTERNAL_THRESHOLD = 1024;

/** The `metadata_props` keys with which the model file describes its external data file. */
export const EXTERNAL_DATA_KEYS = {
  /** The data file's name, beside the model file. */
  location: "external_data",
  /** Its size in bytes. */
  bytes: "external_data_bytes",
  /** Its SHA-256, hex. */
  sha256: "external_data_sha256",
} as const;

/** Options of {@link writeOnnx}. */
export interface WriteOnnxOptions {
  /**
   * Tensors of at least this many bytes go to the data file; `false` embeds everything in
   * the model file (then the model must stay under protobuf's 2 GiB). Default 1024.
   */
  externalDataThreshold?: number | false;
  /**
   * `metadata_props` of the model (e.g. the model name, converter version). The writer adds the
   * {@link EXTERNAL_DATA_KEYS} when tensors go to a data file.
   */
  metadata?: Readonly<Record<string, string>>;
  /** The model's `doc_string`. */
  docString?: string;
  /** `producer_version`; `producer_name` is always "endosynth". */
  producerVersion?: string;
  /** Progress while tensors are written (phase "writing weights", fraction by bytes). */
  onProgress?: ProgressCallback;
  /** Cancels the write; nothing is left at the target paths. */
  signal?: AbortSignal;
}

/** What {@link writeOnnx} wrote. */
export interface OnnxFiles {
  /** The model file. */
  model: string;
  /** The external data file, when any tensor went there. */
  data?: string;
  /** Bytes of tensor data written (both files). */
  tensorBytes: number;
}

/** The little-endian bytes ONNX stores for an array; a view when the array holds them already. */
export function tensorBytes(array: NdArray): Uint8Array {
  const { data, dtype } = array;
  if ((dtype === "float16" || dtype === "bfloat16") && data instanceof Float32Array) {
    const bits = dtype === "float16" ? encodeFloat16(data) : bfloat16Bits(data);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The bfloat16 bit patterns of values that are exactly bfloat16 (decoded ones): their top 16 bits. */
function bfloat16Bits(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Uint16Array.from(words, (word) => word >>> 16);
}

/** Bytes the array takes in the file (float16 held decoded takes 2 bytes per element there). */
function storedByteLength(array: NdArray): number {
  return size(array.shape) * ITEM_SIZE[array.dtype];
}

function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Where each large tensor went in the data file, and what the file holds in all. */
interface ExternalData {
  locations: Map<string, TensorSpec>;
  metadata: Record<string, string>;
}

/** Streams the large tensors to the data file, hashing them on the way. */
async function writeExternalData(
  fd: number,
  location: string,
  tensors: readonly Initializer[],
  options: WriteOnnxOptions,
): Promise<ExternalData> {
  const locations = new Map<string, TensorSpec>();
  const total = tensors.reduce((sum, t) => sum + storedByteLength(t.array), 0);
  const padding = new Uint8Array(EXTERNAL_DATA_ALIGNMENT);
  const hash = createHash("sha256");
  const write = (bytes: Uint8Array): void => {
    writeFully(fd, bytes);
    hash.update(bytes);
  };
  let offset = 0;
  let done = 0;
  for (const { name, array } of tensors) {
    if (options.signal?.aborted) throw new AbortError("Writing the ONNX model was aborted");
    const bytes = tensorBytes(array);
    const start = alignUp(offset, EXTERNAL_DATA_ALIGNMENT);
    if (start > offset) write(padding.subarray(0, start - offset));
    write(bytes);
    offset = start + bytes.byteLength;
    locations.set(name, { name, dtype: array.dtype, shape: array.shape, data: { kind: "external", location, offset: start, length: bytes.byteLength } });
    done += bytes.byteLength;
    options.onProgress?.({ phase: "writing weights", fraction: total === 0 ? 1 : done / total, detail: name });
    // Let abort signals and progress consumers run between tensors of a long write.
    await yieldToEventLoop();
  }
  const metadata = {
    [EXTERNAL_DATA_KEYS.location]: location,
    [EXTERNAL_DATA_KEYS.bytes]: String(offset),
    [EXTERNAL_DATA_KEYS.sha256]: hash.digest("hex"),
  };
  return { locations, metadata };
}

/** Data files written for the model file `base`: `<base>.data` or `<base>.<16 hex digits>.data`. */
function isDataFileOf(base: string, name: string): boolean {
  return name.startsWith(`${base}.`) && /^\.([0-9a-f]{16}\.)?data$/.test(name.slice(base.length));
}

/** The data file the model at `path` refers to, if it is an ONNX model that names one. */
async function referencedDataFile(path: string): Promise<string | undefined> {
  try {
    return (await readOnnxMetadata(path)).metadata[EXTERNAL_DATA_KEYS.location];
  } catch {
    return undefined;
  }
}

/**
 * Removes the data files of `path`'s model that its current model file does not refer to: the one
 * it replaced, and those of writes killed between their two renames.
 */
async function removeUnreferencedData(path: string, previous: string | undefined): Promise<void> {
  const dir = dirname(path);
  const base = basename(path);
  const current = await referencedDataFile(path);
  const names = await readdir(dir);
  const stale = names.filter((name) => name !== current && (name === previous || isDataFileOf(base, name)));
  await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
}

/**
 * Writes `graph` to `path` (and a data file beside it when tensors go external). Resolves once both
 * files are complete and in place.
 * @throws {@link endosynth!AbortError | AbortError} when `signal` aborts; nothing is left at the target paths.
 */
export async function writeOnnx(graph: OnnxGraph, path: string, options: WriteOnnxOptions = {}): Promise<OnnxFiles> {
  if (endianness() !== "LE") throw new InputError("Writing ONNX models needs a little-endian machine");
  if (graph.outputs.length === 0) throw new InputError(`The ONNX graph ${graph.name} has no outputs`);
  const threshold = options.externalDataThreshold ?? DEFAULT_EXTERNAL_THRESHOLD;
  const initializers = graph.initializers;
  const external = threshold === false ? [] : initializers.filter((t) => storedByteLength(t.array) >= threshold);

  const writeModel = ({ locations, metadata }: ExternalData): void => {
    const tensors = initializers.map(
      ({ name, array }): TensorSpec => locations.get(name) ?? { name, dtype: array.dtype, shape: array.shape, data: { kind: "embedded", bytes: tensorBytes(array) } },
    );
    const model = encodeModel({
      graphName: graph.name,
      producerName: "endosynth",
      producerVersion: options.producerVersion ?? "",
      docString: options.docString,
      metadata: { ...options.metadata, ...metadata },
      nodes: graph.nodes,
      initializers: tensors,
      inputs: graph.inputs,
      outputs: graph.outputs,
    });
    if (options.signal?.aborted) throw new AbortError("Writing the ONNX model was aborted");
    writeFileAtomicSync(path, model.chunks());
  };

  const tensorBytesTotal = initializers.reduce((sum, t) => sum + storedByteLength(t.array), 0);
  if (external.length === 0) {
    writeModel({ locations: new Map(), metadata: {} });
    return { model: path, tensorBytes: tensorBytesTotal };
  }
  const dataPath = await withLock(join(dirname(path), `.${basename(path)}.endosynth-lock`), async () => {
    await removeStaleTemporaries(dirname(path));
    const dataName = existsSync(`${path}.data`) ? `${basename(path)}.${randomBytes(8).toString("hex")}.data` : `${basename(path)}.data`;
    const dataPath = join(dirname(path), dataName);
    const data = await withAtomicFile(dataPath, async (temporary) => {
      const fd = openSync(temporary, "wx");
      try {
        const written = await writeExternalData(fd, dataName, external, options);
        fsyncSync(fd);
        return written;
      } finally {
        closeSync(fd);
      }
    });
    const previous = await referencedDataFile(path);
    try {
      writeModel(data);
    } catch (error) {
      await rm(dataPath, { force: true });
      throw error;
    }
    await removeUnreferencedData(path, previous);
    return dataPath;
  }, options.signal ? { signal: options.signal } : {});
  return { model: path, data: dataPath, tensorBytes: tensorBytesTotal };
}
