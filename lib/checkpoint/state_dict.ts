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
import { DTYPES, HALF_PRECISIONS, ITEM_SIZE, size, type DType, type HalfPrecision, type NdArray } from "../ndarray/ndarray.js";
import { unreadableReason } from "../io/read_file.js";
import { PyFloat } from "./pickle.js";
import { isLegacyTorch, isZip, openPth, readTorchTensor, TorchTensor, type ByteOrder } from "./pth.js";
import { isSafetensors, readSafetensors } from "./safetensors.js";
import { isContiguous } from "./tensor_data.js";

/** A model's weights by parameter name, in the checkpoint's order. */
export type StateDict = Map<string, NdArray>;

/** The file formats a state dict can be read from. */
export type CheckpointFormat = "pytorch" | "safetensors";

/** The keys under which training scripts commonly nest the state dict, in the order they are tried. */
export const STATE_DICT_WRAPPERS = ["state_dict", "model_state_dict", "model"] as const;

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
  /**
   * The key of the checkpoint's top-level dict that holds the state dict, for a wrapper under a
   * name of its own (`{ "net": state_dict, "epoch": 3 }` → `"net"`). Without it, the state dict
   * is the top-level dict or one under `state_dict`, `model_state_dict` or `model`; the error for
   * another layout names the key to pass here.
   */
  stateDictKey?: string;
}

/** An entry of the checkpoint that is not a tensor of the state dict, and was left out. */
export interface DroppedEntry {
  /** Its key: a state-dict key, or a top-level key beside the wrapper (`"optimizer"`, `"epoch"`). */
  readonly key: string;
  /** What it holds, as Python would name it: `"an int"`, `"a bool"`, `"a dict"`, ... */
  readonly type: string;
}

/** What was read and how, for callers that report or check it. */
export interface CheckpointInfo {
  /** The file read (absent when reading bytes without a name). */
  readonly file?: string;
  /** The file's format. */
  readonly format: CheckpointFormat;
  /**
   * The key the state dict was found under, when the file holds e.g. `{ model: state_dict, ... }`:
   * `state_dict`, `model_state_dict`, `model` (dotted when nested: `"state_dict.model"`) or
   * {@link ReadStateDictOptions.stateDictKey}.
   */
  readonly wrapper?: string;
  /**
   * What was left out because it is not a tensor: entries such as `height`, `width`, `use_stereo`
   * that EndoDAC's trainer saves beside the weights (the official wrapper drops them too), and the
   * top-level entries beside a wrapper (`optimizer`, `epoch`, ...). Empty for a plain state dict.
   */
  readonly dropped: readonly DroppedEntry[];
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

const OPTION_NAMES = ["halfPrecision", "stateDictKey"] as const;
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Reads the state dict of a checkpoint file. Asynchronous because the file (up to GBs) is read
 * in chunks that leave the event loop free; parsing is then synchronous and fast (only the pickle
 * is parsed; tensors are views into the file's bytes).
 *
 * Accepts a state dict saved directly, or nested under `state_dict`, `model_state_dict` or `model`
 * (see {@link CheckpointInfo.wrapper}) or {@link ReadStateDictOptions.stateDictKey}; a `module.`
 * prefix on every key is removed; entries that are not tensors (EndoDAC's `height`, `width`,
 * `use_stereo`; a training checkpoint's `epoch` and `optimizer`) are left out and listed in
 * {@link CheckpointInfo.dropped}. Only dicts, plain values and tensors can be unpickled: a
 * checkpoint that pickles other Python objects is refused.
 *
 * Bounded: the pickle's size, nesting and what it builds are limited, every storage's CRC-32 is
 * checked, and tensors whose views would need far more memory than their storages hold (stride 0
 * from `expand()`) are refused by name rather than materialised.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when the file is missing, in the legacy pre-1.6 format, not a
 * checkpoint, truncated or corrupt, holds a forbidden pickle global, a tensor of an unsupported
 * dtype or impossible layout, or no tensors (naming the key to pass as `stateDictKey` when they
 * are under another).
 * @throws {@link endosynth!InputError | InputError} for bad arguments.
 */
export async function readStateDict(path: string, options?: ReadStateDictOptions): Promise<Checkpoint> {
  assertString("path", path);
  const settings = checkOptions(options);
  const bytes = await readWholeFile(path);
  return parseCheckpoint(bytes, path, settings);
}

/**
 * {@link readStateDict} for a checkpoint already in memory. The returned tensors may be views
 * into `bytes`: keep it unmodified while they are in use.
 */
export function readStateDictFromBytes(bytes: Uint8Array, options?: ReadStateDictFromBytesOptions): Checkpoint {
  const settings = checkOptions(options, ["file"]);
  if (options?.file !== undefined) assertString("options.file", options.file);
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  return parseCheckpoint(bytes, options?.file, settings);
}

/** The checked options every reader passes down. */
interface Settings {
  halfPrecision: HalfPrecision;
  stateDictKey?: string;
}

function checkOptions(options: ReadStateDictOptions | undefined, extra: readonly string[] = []): Settings {
  assertOptions("options", options as unknown, [...OPTION_NAMES, ...extra]);
  const halfPrecision = options?.halfPrecision ?? "decoded";
  assertOneOf("options.halfPrecision", halfPrecision, HALF_PRECISIONS);
  if (options?.stateDictKey !== undefined) assertString("options.stateDictKey", options.stateDictKey);
  return { halfPrecision, stateDictKey: options?.stateDictKey };
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

function parseCheckpoint(bytes: Uint8Array, file: string | undefined, settings: Settings): Checkpoint {
  const where = file ?? "checkpoint data";
  if (bytes.byteLength === 0) throw new CheckpointError(`${where} is empty`, { file });
  if (isZip(bytes)) return readPytorch(bytes, file, settings);
  if (isSafetensors(bytes)) return readSafetensorsCheckpoint(bytes, file, settings);
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

function readPytorch(bytes: Uint8Array, file: string | undefined, settings: Settings): Checkpoint {
  const { halfPrecision } = settings;
  const archive = openPth(bytes, file);
  const { entries, wrapper, dropped } = findStateDict(archive.root, file, settings.stateDictKey);
  const { keys, strippedPrefix } = stripDataParallelPrefix(entries.map(([key]) => key));
  const stateDict: StateDict = new Map();
  const budget = new CopyBudget(file, halfPrecision, archive.byteOrder === "big");
  // A tensor pickled once and named twice (tied weights) is read once and shared, as in torch.
  const read = new Map<TorchTensor, NdArray>();
  let copiedTensors = 0;
  entries.forEach(([key, tensor], i) => {
    let array = read.get(tensor);
    if (array === undefined) {
      budget.admit(key, tensor);
      const data = readTorchTensor(archive, tensor, key, halfPrecision);
      if (data.copied) copiedTensors++;
      array = data.array;
      read.set(tensor, array);
    }
    stateDict.set(keys[i], array);
  });
  return {
    stateDict,
    info: summarize(stateDict, {
      file,
      format: "pytorch",
      wrapper,
      dropped,
      strippedPrefix,
      byteOrder: archive.byteOrder,
      copiedTensors,
      bytes: bytes.byteLength,
    }),
  };
}

function readSafetensorsCheckpoint(bytes: Uint8Array, file: string | undefined, settings: Settings): Checkpoint {
  const { tensors, metadata, copiedTensors } = readSafetensors(bytes, file, settings.halfPrecision);
  const { keys, strippedPrefix } = stripDataParallelPrefix([...tensors.keys()]);
  const stateDict: StateDict = new Map([...tensors.values()].map((array, i) => [keys[i], array]));
  return {
    stateDict,
    info: summarize(stateDict, {
      file,
      format: "safetensors",
      dropped: [],
      strippedPrefix,
      byteOrder: "little",
      copiedTensors,
      bytes: bytes.byteLength,
      metadata,
    }),
  };
}

/** Memory any checkpoint may spend on copies beyond what its storages justify. */
const COPY_SLACK_BYTES = 64 * 1024 * 1024;

/**
 * Keeps the copies a checkpoint's tensors need (strided gathers, byte swaps, decoded halves) in
 * proportion to the storages they come from: each storage entitles its tensors to one copy of it
 * (three for decoded halves: gathered, then decoded to float32), plus {@link COPY_SLACK_BYTES}.
 * A view that repeats its storage's elements (stride 0 from `expand()`, overlapping strides, one
 * storage viewed many times over) cannot make a small file allocate gigabytes: it is refused,
 * naming the tensor and the bytes it would need.
 */
class CopyBudget {
  readonly #file: string | undefined;
  readonly #decodeHalves: boolean;
  readonly #bigEndian: boolean;
  readonly #storages = new Set<string>();
  #allowed = COPY_SLACK_BYTES;
  #storageBytes = 0;
  #spent = 0;

  constructor(file: string | undefined, halfPrecision: HalfPrecision, bigEndian: boolean) {
    this.#file = file;
    this.#decodeHalves = halfPrecision === "decoded";
    this.#bigEndian = bigEndian;
  }

  admit(key: string, tensor: TorchTensor): void {
    if (tensor.problem !== undefined) return; // refused by name when read
    const { storage, dtype, shape, stride } = tensor;
    const half = dtype === "float16" || dtype === "bfloat16";
    if (!this.#storages.has(storage.key)) {
      this.#storages.add(storage.key);
      const bytes = storage.numel * ITEM_SIZE[storage.dtype];
      this.#storageBytes += bytes;
      this.#allowed += half && this.#decodeHalves ? 3 * bytes : bytes;
    }
    const count = size(shape);
    const copied = !isContiguous(shape, stride) || (this.#bigEndian && ITEM_SIZE[dtype] > 1) ? count * ITEM_SIZE[dtype] : 0;
    const decoded = half && this.#decodeHalves ? count * 4 : 0;
    const cost = copied + decoded;
    if (this.#spent + cost <= this.#allowed) {
      this.#spent += cost;
      return;
    }
    const where = this.#file ?? "checkpoint";
    throw new CheckpointError(
      `${where}: tensor '${key}' (shape (${shape.join(", ")}), stride (${stride.join(", ")}), ${dtype}) would need ${cost} bytes as an array, ` +
        `but the checkpoint's tensors already take ${this.#spent} and its ${this.#storages.size} storages hold only ${this.#storageBytes}: ` +
        "views that repeat their storage's elements (stride 0 from expand(), overlapping strides, a storage viewed many times) are not materialised past that; " +
        "save such tensors with .contiguous() or .clone()",
      { file: this.#file, key },
    );
  }
}

interface FoundStateDict {
  entries: [string, TorchTensor][];
  wrapper?: string;
  dropped: DroppedEntry[];
}

/** How many values of a dict are tensors. */
function tensorCount(dict: Map<unknown, unknown>): number {
  let count = 0;
  for (const value of dict.values()) if (value instanceof TorchTensor) count++;
  return count;
}

/** The entries of `dict` other than `except`, as dropped entries (under `prefix`). */
function siblings(dict: Map<unknown, unknown>, except: string, prefix: string): DroppedEntry[] {
  return [...dict].filter(([key]) => key !== except).map(([key, value]) => ({ key: `${prefix}${String(key)}`, type: pythonType(value) }));
}

/** Known wrappers nest at most this deep (`{ state_dict: { model: ... } }` is 2). */
const MAX_WRAPPER_DEPTH = 3;

/**
 * The dict of tensors in a checkpoint: the pickled dict itself, or the dict under
 * `stateDictKey` or one of {@link STATE_DICT_WRAPPERS} (nested at most 3 deep), whichever holds
 * the most tensors. Entries that are not tensors are dropped and listed.
 */
function findStateDict(root: unknown, file: string | undefined, stateDictKey: string | undefined): FoundStateDict {
  const where = file ?? "checkpoint";
  if (!(root instanceof Map)) {
    throw new CheckpointError(`${where} holds ${pythonType(root)}, not a state dict (a dict of tensors)`, { file });
  }
  let dict: Map<unknown, unknown> = root;
  let wrapper: string | undefined;
  const dropped: DroppedEntry[] = [];
  if (stateDictKey !== undefined) {
    const value = root.get(stateDictKey);
    if (!(value instanceof Map)) {
      const found = value === undefined ? "is not one of its top-level keys" : `holds ${pythonType(value)}, not a dict`;
      throw new CheckpointError(`${where}: options.stateDictKey '${stateDictKey}' ${found} (they are: ${topLevelKeys(root)})`, { file, key: stateDictKey });
    }
    dropped.push(...siblings(root, stateDictKey, ""));
    dict = value;
    wrapper = stateDictKey;
  } else {
    for (let depth = 0; depth < MAX_WRAPPER_DEPTH; depth++) {
      // Into a wrapper when there are no tensors here, or it holds more of them than here.
      const here = tensorCount(dict);
      const inner = STATE_DICT_WRAPPERS.find((name) => {
        const value = dict.get(name);
        return value instanceof Map && (here === 0 || tensorCount(value) > here);
      });
      if (inner === undefined) break;
      const prefix = wrapper === undefined ? "" : `${wrapper}.`;
      dropped.push(...siblings(dict, inner, prefix));
      dict = dict.get(inner) as Map<unknown, unknown>;
      wrapper = `${prefix}${inner}`;
    }
    if (tensorCount(dict) === 0) throw noTensors(dict, where, file, wrapper);
  }
  const entries: [string, TorchTensor][] = [];
  const prefix = wrapper === undefined ? "" : `${wrapper}.`;
  for (const [key, value] of dict) {
    if (typeof key !== "string") throw new CheckpointError(`${where}: the state dict has a key that is not a string (${pythonType(key)})`, { file });
    if (value instanceof TorchTensor) entries.push([key, value]);
    else dropped.push({ key: `${prefix}${key}`, type: pythonType(value) });
  }
  if (entries.length === 0) throw noTensors(dict, where, file, wrapper);
  return { entries, wrapper, dropped };
}

function topLevelKeys(dict: Map<unknown, unknown>): string {
  const keys = [...dict.keys()].map((key) => `'${String(key)}'`);
  return keys.length > 12 ? `${keys.slice(0, 12).join(", ")}, ...` : keys.join(", ") || "none";
}

/**
 * The error for a dict without tensors: when one of its values is a dict of tensors, it names that
 * key and how to use it; otherwise it lists what the dict holds.
 */
function noTensors(dict: Map<unknown, unknown>, where: string, file: string | undefined, wrapper: string | undefined): CheckpointError {
  let best: string | undefined;
  let most = 0;
  for (const [key, value] of dict) {
    if (typeof key === "string" && value instanceof Map && tensorCount(value) > most) {
      best = key;
      most = tensorCount(value);
    }
  }
  const at = wrapper === undefined ? "" : ` under '${wrapper}'`;
  if (best !== undefined) {
    const path = wrapper === undefined ? best : `${wrapper}.${best}`;
    const hint =
      wrapper === undefined
        ? `pass { stateDictKey: '${best}' } to readStateDict, or re-save it as a plain state dict: `
        : "re-save it as a plain state dict: ";
    const load = `torch.load('in.pth', map_location='cpu')${[...(wrapper?.split(".") ?? []), best].map((key) => `['${key}']`).join("")}`;
    return new CheckpointError(
      `${where} holds no tensors at its top level${at}: its ${most} tensors are under '${path}', which is not a key endosynth unwraps by itself ` +
        `(${STATE_DICT_WRAPPERS.map((name) => `'${name}'`).join(", ")}); ${hint}python -c "import torch; torch.save(${load}, 'out.pth')"`,
      { file, key: path },
    );
  }
  return new CheckpointError(
    `${where} holds no tensors${at}: expected a state dict (a dict of tensors), or one under ` +
      `${STATE_DICT_WRAPPERS.map((name) => `'${name}'`).join(", ")}; its keys are ${topLevelKeys(dict)}`,
    { file },
  );
}

/** Python's name for what an unpickled value was, for messages. */
function pythonType(value: unknown): string {
  if (value === null) return "None";
  if (typeof value === "string") return "a str";
  if (typeof value === "number" || typeof value === "bigint") return "an int";
  if (value instanceof PyFloat) return "a float";
  if (typeof value === "boolean") return "a bool";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return "a list or tuple";
  if (value instanceof Map) return "a dict";
  if (value instanceof TorchTensor) return "a tensor";
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
