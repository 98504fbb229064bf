/**
 * Reads a model's weights, a state dict, from a PyTorch checkpoint (`torch.save`, torch >= 1.6) or
 * a `.safetensors` file, with no Python: the format is recognised from the content, never the
 * extension. Tensors are views into the file's bytes wherever alignment allows, so reading costs
 * about the file's size in memory.
 *
 * @example
 * ```ts
 * import { readStateDict } from "endosynth";
 * const { stateDict, info } = await readStateDict("checkpoints/dav1-f.pth");
 * console.log(info.format, info.tensors, info.parameters); // "pytorch" 239 97470785
 * const pos = stateDict.get("pretrained.pos_embed"); // { data: Float32Array, shape: [1, 1370, 768], dtype: "float32" }
 * ```
 * @module
 */
import { open } from "node:fs/promises";
import { constants as bufferConstants } from "node:buffer";
import { CheckpointError } from "../errors.js";
import { assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import { DTYPES, HALF_PRECISIONS, size, type DType, type HalfPrecision, type NdArray } from "../ndarray/ndarray.js";
import { unreadableReason } from "../io/read_file.js";
import { isLegacyTorch, isZip, openPth, readTorchTensor, TorchTensor, type ByteOrder } from "./pth.js";
import { isSafetensors, readSafetensors } from "./safetensors.js";

/** A model's weights by parameter name, in the checkpoint's order. */
export type StateDict = Map<string, NdArray>;

/** The file formats a state dict can be read from. */
export type CheckpointFormat = "pytorch" | "safetensors";

/** The keys under which training scripts commonly nest the state dict, in the order they are tried. */
export const STATE_DICT_WRAPPERS = ["state_dict", "model"] as const;

/** One of {@link STATE_DICT_WRAPPERS}. */
export type StateDictWrapper = (typeof STATE_DICT_WRAPPERS)[number];

/** The prefix `torch.nn.DataParallel` puts on every key. */
export const DATA_PARALLEL_PREFIX = "module.";

/** Options of {@link readStateDict}. */
export interface ReadStateDictOptions {
  /**
   * How float16/bfloat16 tensors are handed out: `"decoded"` (default) as exact float32 values,
   * `"raw"` as their 16-bit patterns in a `Uint16Array` (the dtype stays float16/bfloat16).
   */
  halfPrecision?: HalfPrecision;
}

/** What was read and how, for callers that report or check it. */
export interface CheckpointInfo {
  /** The file read (absent when reading bytes without a name). */
  readonly file?: string;
  /** The file's format. */
  readonly format: CheckpointFormat;
  /** The key the state dict was found under, when the file holds e.g. `{ model: state_dict, ... }`. */
  readonly wrapper?: StateDictWrapper;
  /** The prefix removed from every key (`"module."`, when all keys had it), if any. */
  readonly strippedPrefix?: typeof DATA_PARALLEL_PREFIX;
  /** Byte order of the stored data (safetensors are always little-endian). */
  readonly byteOrder: ByteOrder;
  /** Number of tensors in the state dict. */
  readonly tensors: number;
  /** Total number of elements over all tensors. */
  readonly parameters: number;
  /** The dtypes present, in {@link DTYPES} order. */
  readonly dtypes: readonly DType[];
  /** How many tensors are copies rather than views of the file's bytes (non-contiguous, unaligned, byte-swapped or decoded). */
  readonly copiedTensors: number;
  /** The file's size in bytes. */
  readonly bytes: number;
  /** safetensors `__metadata__` (empty for PyTorch checkpoints). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A state dict and what is known about where it came from. */
export interface Checkpoint {
  /** The weights, keys as the model expects them (a DataParallel `module.` prefix removed). */
  readonly stateDict: StateDict;
  /** Facts about the file and the reading. */
  readonly info: CheckpointInfo;
}

/** Options of {@link readStateDictFromBytes}. */
export interface ReadStateDictFromBytesOptions extends ReadStateDictOptions {
  /** What to call the data in messages and in {@link CheckpointInfo.file}. */
  file?: string;
}

const OPTION_NAMES = ["halfPrecision"] as const;
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Reads the state dict of a checkpoint file. Asynchronous because the file (up to GBs) is read
 * in chunks that leave the event loop free; parsing is then synchronous and fast (only the pickle
 * is parsed; tensors are views into the file's bytes).
 *
 * Accepts a state dict saved directly, or nested under `state_dict` or `model` (see
 * {@link CheckpointInfo.wrapper}); a `module.` prefix on every key is removed. Only dicts, plain
 * values and tensors can be unpickled: a checkpoint that pickles other Python objects is refused.
 * @throws {CheckpointError} when the file is missing, in the legacy pre-1.6 format, not a
 * checkpoint, truncated, or holds a forbidden pickle global or something other than tensors.
 * @throws {InputError} for bad arguments.
 */
export async function readStateDict(path: string, options?: ReadStateDictOptions): Promise<Checkpoint> {
  assertString("path", path);
  const halfPrecision = checkOptions(options);
  const bytes = await readWholeFile(path);
  return parseCheckpoint(bytes, path, halfPrecision);
}

/**
 * {@link readStateDict} for a checkpoint already in memory. The returned tensors may be views
 * into `bytes`: keep it unmodified while they are in use.
 */
export function readStateDictFromBytes(bytes: Uint8Array, options?: ReadStateDictFromBytesOptions): Checkpoint {
  const halfPrecision = checkOptions(options, ["file"]);
  if (options?.file !== undefined) assertString("options.file", options.file);
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  return parseCheckpoint(bytes, options?.file, halfPrecision);
}

function checkOptions(options: ReadStateDictOptions | undefined, extra: readonly string[] = []): HalfPrecision {
  assertOptions("options", options as unknown, [...OPTION_NAMES, ...extra]);
  const halfPrecision = options?.halfPrecision ?? "decoded";
  assertOneOf("options.halfPrecision", halfPrecision, HALF_PRECISIONS);
  return halfPrecision;
}

/** The whole file in one buffer, read in chunks so other work runs meanwhile. */
async function readWholeFile(path: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new CheckpointError(`Checkpoint file ${path} cannot be opened: ${unreadableReason(error)}`, { file: path, cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new CheckpointError(`Checkpoint ${path} is not a regular file`, { file: path });
    if (stats.size > bufferConstants.MAX_LENGTH) {
      throw new CheckpointError(`Checkpoint ${path} is ${stats.size} bytes, more than one buffer can hold here (${bufferConstants.MAX_LENGTH})`, {
        file: path,
      });
    }
    const bytes = Buffer.allocUnsafeSlow(stats.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, Math.min(READ_CHUNK_BYTES, bytes.length - filled), filled);
      if (bytesRead === 0) {
        throw new CheckpointError(`Checkpoint ${path} shrank while it was read (${filled} of ${bytes.length} bytes)`, { file: path });
      }
      filled += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

function parseCheckpoint(bytes: Uint8Array, file: string | undefined, halfPrecision: HalfPrecision): Checkpoint {
  const where = file ?? "checkpoint data";
  if (bytes.byteLength === 0) throw new CheckpointError(`${where} is empty`, { file });
  if (isZip(bytes)) return readPytorch(bytes, file, halfPrecision);
  if (isSafetensors(bytes)) return readSafetensorsCheckpoint(bytes, file, halfPrecision);
  if (isLegacyTorch(bytes)) {
    throw new CheckpointError(
      `${where} is in PyTorch's legacy (pre-1.6, non-zip) format, which is not supported; re-save it with torch >= 1.6: ` +
        `python -c "import torch; torch.save(torch.load('old.pth', map_location='cpu'), 'new.pth')"`,
      { file },
    );
  }
  const head = [...bytes.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, "0")).join(" ");
  throw new CheckpointError(
    `${where} is neither a PyTorch checkpoint (a zip archive written by torch.save) nor a safetensors file; it starts with bytes ${head}`,
    { file },
  );
}

function readPytorch(bytes: Uint8Array, file: string | undefined, halfPrecision: HalfPrecision): Checkpoint {
  const archive = openPth(bytes, file);
  const { entries, wrapper } = findStateDict(archive.root, file);
  const { keys, strippedPrefix } = stripDataParallelPrefix(entries.map(([key]) => key));
  const stateDict: StateDict = new Map();
  let copiedTensors = 0;
  entries.forEach(([key, tensor], i) => {
    const data = readTorchTensor(archive, tensor, key, halfPrecision);
    if (data.copied) copiedTensors++;
    stateDict.set(keys[i], data.array);
  });
  return {
    stateDict,
    info: summarize(stateDict, { file, format: "pytorch", wrapper, strippedPrefix, byteOrder: archive.byteOrder, copiedTensors, bytes: bytes.byteLength }),
  };
}

function readSafetensorsCheckpoint(bytes: Uint8Array, file: string | undefined, halfPrecision: HalfPrecision): Checkpoint {
  const { tensors, metadata, copiedTensors } = readSafetensors(bytes, file, halfPrecision);
  const { keys, strippedPrefix } = stripDataParallelPrefix([...tensors.keys()]);
  const stateDict: StateDict = new Map([...tensors.values()].map((array, i) => [keys[i], array]));
  return {
    stateDict,
    info: summarize(stateDict, { file, format: "safetensors", strippedPrefix, byteOrder: "little", copiedTensors, bytes: bytes.byteLength, metadata }),
  };
}

/**
 * The dict of tensors in a checkpoint: the pickled object itself, or the dict under one of
 * {@link STATE_DICT_WRAPPERS}. Every value must be a tensor.
 */
function findStateDict(root: unknown, file: string | undefined): { entries: [string, TorchTensor][]; wrapper?: StateDictWrapper } {
  const where = file ?? "checkpoint";
  if (!(root instanceof Map)) {
    throw new CheckpointError(`${where} holds ${pythonType(root)}, not a state dict (a dict of tensors)`, { file });
  }
  let dict: Map<unknown, unknown> = root;
  let wrapper: StateDictWrapper | undefined;
  if (![...root.values()].every((value) => value instanceof TorchTensor)) {
    wrapper = STATE_DICT_WRAPPERS.find((name) => root.get(name) instanceof Map);
    if (wrapper) dict = root.get(wrapper) as Map<unknown, unknown>;
  }
  const entries: [string, TorchTensor][] = [];
  for (const [key, value] of dict) {
    if (typeof key !== "string") throw new CheckpointError(`${where}: the state dict has a key that is not a string (${pythonType(key)})`, { file });
    if (!(value instanceof TorchTensor)) {
      const keyPath = wrapper ? `${wrapper}.${key}` : key;
      const hint = wrapper ? "" : `; expected a state dict, or one under ${STATE_DICT_WRAPPERS.map((name) => `'${name}'`).join(" or ")}`;
      throw new CheckpointError(`${where}: '${keyPath}' holds ${pythonType(value)}, not a tensor${hint}`, { file, key: keyPath });
    }
    entries.push([key, value]);
  }
  return { entries, wrapper };
}

/** Python's name for what an unpickled value was, for messages. */
function pythonType(value: unknown): string {
  if (value === null) return "None";
  if (typeof value === "string") return "a str";
  if (typeof value === "number" || typeof value === "bigint") return Number.isInteger(value) || typeof value === "bigint" ? "an int" : "a float";
  if (typeof value === "boolean") return "a bool";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return "a list or tuple";
  if (value instanceof Map) return "a dict";
  return "an object";
}

/** Removes the `module.` that DataParallel puts on every key, if every key has it. */
function stripDataParallelPrefix(keys: string[]): { keys: string[]; strippedPrefix?: typeof DATA_PARALLEL_PREFIX } {
  if (keys.length === 0 || !keys.every((key) => key.startsWith(DATA_PARALLEL_PREFIX))) return { keys };
  return { keys: keys.map((key) => key.slice(DATA_PARALLEL_PREFIX.length)), strippedPrefix: DATA_PARALLEL_PREFIX };
}

function summarize(
  stateDict: StateDict,
  facts: Omit<CheckpointInfo, "tensors" | "parameters" | "dtypes" | "metadata"> & { metadata?: Record<string, string> },
): CheckpointInfo {
  let parameters = 0;
  const seen = new Set<DType>();
  for (const array of stateDict.values()) {
    parameters += size(array.shape);
    seen.add(array.dtype);
  }
  return {
    ...facts,
    tensors: stateDict.size,
    parameters,
    dtypes: DTYPES.filter((dtype) => seen.has(dtype)),
    metadata: facts.metadata ?? {},
  };
}
