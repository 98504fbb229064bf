/**
 * PyTorch checkpoints as `torch.save` writes them since torch 1.6: a zip archive holding
 * `<stem>/data.pkl` (the pickled object, tensors as persistent ids naming storages),
 * `<stem>/data/<key>` (each storage's raw bytes, stored, 64-byte aligned), `<stem>/version`, and
 * since torch 2.1 `<stem>/byteorder` (`little` when absent).
 *
 * The pickle is read by our own {@link unpickle} with only the globals a state dict needs; tensors
 * come out as {@link TorchTensor} descriptions and their data is read on demand with
 * {@link readTorchTensor}, as views into the archive's bytes wherever alignment allows.
 * @module
 */
import { CheckpointError, FileFormatError } from "../errors.js";
import { openZip, readZipEntry, type ZipArchive } from "../io/zip_reader.js";
import { ITEM_SIZE, type DType, type HalfPrecision } from "../ndarray/ndarray.js";
import { PyFloat, unpickle, type PickleGlobal } from "./pickle.js";
import { layoutByteEnd, tensorFromStorage, type TensorData, type TensorLayout } from "./tensor_data.js";

/** Byte order of a checkpoint's storages. */
export type ByteOrder = "little" | "big";

/** A storage as a persistent id names it. */
export interface TorchStorage {
  /** Its name under `<stem>/data/`. */
  readonly key: string;
  /** Element type, from the storage class (`torch.FloatStorage` → float32; `torch.UntypedStorage` → uint8). */
  readonly dtype: DType;
  /** Number of elements it holds. */
  readonly numel: number;
}

/**
 * A tensor as `torch._utils._rebuild_tensor_v2` (or `_v3`) describes it: a strided view of a
 * storage. One that cannot be read (an unsupported dtype, a size that is not integers, a negative
 * stride) carries the reason in {@link TorchTensor.problem}, reported with its key when it is read.
 */
export class TorchTensor implements TensorLayout {
  constructor(
    /** The storage it views (several tensors may view the same one). */
    readonly storage: TorchStorage,
    /** Element type (the storage's, or for `_rebuild_tensor_v3` the one given). */
    readonly dtype: DType,
    /** Index of its first element in the storage, in elements of `dtype`. */
    readonly offset: number,
    /** Its dimensions. */
    readonly shape: readonly number[],
    /** Its strides, in elements of `dtype`. */
    readonly stride: readonly number[],
    /** Why it cannot be read, if it cannot. */
    readonly problem?: string,
  ) {}
}

/** An opened checkpoint: its archive, where its records are, and its unpickled object. */
export interface PthArchive {
  /** The file, for messages. */
  readonly file?: string;
  /** The zip archive, over the file's bytes. */
  readonly zip: ZipArchive;
  /** The records' folder inside the archive, with its slash: `"model/"`. */
  readonly prefix: string;
  /** Byte order of the storages. */
  readonly byteOrder: ByteOrder;
  /** The unpickled `data.pkl`: Maps, arrays, plain values and {@link TorchTensor}s. */
  readonly root: unknown;
}

/** The storage classes torch pickles by name, and the element type each holds. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "float32", HalfStorage: "float16", BFloat16Storage: "bfloat16", DoubleStorage: "float64",
  LongStorage: "int64", IntStorage: "int32", ShortStorage: "int16", CharStorage: "int8",
  ByteStorage: "uint8", BoolStorage: "bool",
};

/** Storage classes torch can save whose element type this package does not read, with torch's dtype name. */
const UNSUPPORTED_STORAGES: Readonly<Record<string, string>> = {
  ComplexFloatStorage: "complex64", ComplexDoubleStorage: "complex128", QInt8Storage: "qint8", QUInt8Storage: "quint8",
  QInt32Storage: "qint32", QUInt4x2Storage: "quint4x2", QUInt2x4Storage: "quint2x4",
};

/** The dtypes `_rebuild_tensor_v3` names (torch >= 2.1 saves uint16/32/64 that way), by torch's names and aliases. */
const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  float32: "float32", float: "float32", float64: "float64", double: "float64", float16: "float16", half: "float16",
  bfloat16: "bfloat16", int8: "int8", uint8: "uint8", int16: "int16", short: "int16", int32: "int32", int: "int32",
  int64: "int64", long: "int64", bool: "bool", uint16: "uint16", uint32: "uint32", uint64: "uint64",
};

/** torch dtypes this package does not read (complex, float8, quantized, bit and sub-byte types). */
const UNSUPPORTED_TORCH_DTYPE = /^(complex\d*|c(float|double|half)|float8_\w+|float4_\w+|q(u?int\w+)|bits\w+|u?int[1-7])$/;

const SUPPORTED = `supported: ${[...new Set(Object.values(STORAGE_DTYPES))].join(", ")}, uint16, uint32, uint64`;

/** A storage class or a dtype: only ever a marker inside a persistent id or an argument, never called. */
class TypeMarker implements PickleGlobal {
  constructor(
    readonly name: string,
    /** The element type, or for one this package does not read, torch's name of it. */
    readonly dtype: DType | { unsupported: string },
  ) {}

  call(): never {
    throw new TypeError(`${this.name} is only accepted inside a storage's persistent id or as a tensor's dtype`);
  }
}

const ORDERED_DICT: PickleGlobal = {
  name: "collections.OrderedDict",
  call(args) {
    const [items] = args;
    if (items === undefined) return new Map();
    if (!Array.isArray(items) || !items.every((item) => Array.isArray(item) && item.length === 2)) {
      throw new TypeError("expects no argument or a list of (key, value) pairs");
    }
    return new Map(items as [unknown, unknown][]);
  },
  // A state dict's attributes (`_metadata`: module versions for load_state_dict) are not needed.
  setState() {},
};

/** Python's spelling of a pickled value, for messages: `(4.0, 3)`. */
function spell(value: unknown): string {
  if (value instanceof PyFloat) return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
  if (Array.isArray(value)) return `(${value.map(spell).join(", ")}${value.length === 1 ? "," : ""})`;
  return String(value);
}

/** Why `value` is not a tuple of non-negative integers (size, stride), or undefined when it is. */
function indexListProblem(value: unknown, what: string): string | undefined {
  if (!Array.isArray(value)) return `its ${what} ${spell(value)} is not a tuple`;
  for (const item of value) {
    if (item instanceof PyFloat) return `its ${what} ${spell(value)} holds the float ${spell(item)} where an integer belongs`;
    if (typeof item === "bigint" || (typeof item === "number" && !Number.isSafeInteger(item))) return `its ${what} ${spell(value)} holds ${spell(item)}, too large`;
    if (typeof item !== "number") return `its ${what} ${spell(value)} holds ${spell(item)}, not an integer`;
    if (item < 0) {
      return what === "stride"
        ? `its stride ${spell(value)} has a negative step, which torch never saves (flip() copies)`
        : `its ${what} ${spell(value)} has a negative dimension`;
    }
  }
  return undefined;
}

/** Why a tensor's offset, size and stride cannot describe it, or undefined when they can. */
function layoutProblem(offset: unknown, shape: unknown, stride: unknown): string | undefined {
  if (offset instanceof PyFloat) return `its storage offset is the float ${spell(offset)}`;
  if (!isIndex(offset)) return `its storage offset ${spell(offset)} is not a non-negative integer`;
  const problem = indexListProblem(shape, "size") ?? indexListProblem(stride, "stride");
  if (problem) return problem;
  if ((stride as number[]).length !== (shape as number[]).length) return `its stride ${spell(stride)} does not match its size ${spell(shape)}`;
  return undefined;
}

/** The tensor `_rebuild_tensor_v2/v3` describes, carrying the reason it cannot be read if it cannot. */
function rebuildTensor(stored: unknown, offset: unknown, shape: unknown, stride: unknown, dtype: DType | { unsupported: string }, typeName: string): TorchTensor {
  if (!(stored instanceof StoredRef)) throw new TypeError("its first argument is not a storage");
  const { storage } = stored;
  const valid = (value: unknown): number[] => (Array.isArray(value) && value.every((item) => typeof item === "number") ? value : []);
  const unsupported = typeof dtype === "object" ? `its dtype ${dtype.unsupported} (${typeName}) is not supported; ${SUPPORTED}` : undefined;
  const problem = unsupported ?? layoutProblem(offset, shape, stride);
  return new TorchTensor(storage, typeof dtype === "object" ? "uint8" : dtype, isIndex(offset) ? offset : 0, valid(shape), valid(stride), problem);
}

const REBUILD_TENSOR_V2: PickleGlobal = {
  name: "torch._utils._rebuild_tensor_v2",
  call(args) {
    const [stored, offset, shape, stride] = args;
    if (!(stored instanceof StoredRef)) throw new TypeError("its first argument is not a storage");
    return rebuildTensor(stored, offset, shape, stride, stored.type.dtype, stored.type.name);
  },
};

/** `_rebuild_tensor_v3(untyped storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`. */
const REBUILD_TENSOR_V3: PickleGlobal = {
  name: "torch._utils._rebuild_tensor_v3",
  call(args) {
    const [stored, offset, shape, stride, , , dtype] = args;
    if (!(dtype instanceof TypeMarker) || dtype.name === UNTYPED_STORAGE) throw new TypeError("its seventh argument is not a torch dtype");
    return rebuildTensor(stored, offset, shape, stride, dtype.dtype, dtype.name);
  },
};

/** `_rebuild_parameter(data, requires_grad, hooks[, state])`: a Parameter is its tensor here. */
function rebuildParameter(name: string): PickleGlobal {
  return {
    name,
    call(args) {
      if (!(args[0] instanceof TorchTensor)) throw new TypeError("its first argument is not a tensor");
      return args[0];
    },
  };
}

const UNTYPED_STORAGE = "torch.UntypedStorage";

const TORCH_GLOBALS: ReadonlyMap<string, PickleGlobal> = new Map<string, PickleGlobal>([
  ["collections.OrderedDict", ORDERED_DICT],
  ["torch._utils._rebuild_tensor_v2", REBUILD_TENSOR_V2],
  ["torch._utils._rebuild_tensor_v3", REBUILD_TENSOR_V3],
  ["torch._utils._rebuild_parameter", rebuildParameter("torch._utils._rebuild_parameter")],
  ["torch._utils._rebuild_parameter_with_state", rebuildParameter("torch._utils._rebuild_parameter_with_state")],
  [UNTYPED_STORAGE, new TypeMarker(UNTYPED_STORAGE, "uint8")],
  ...Object.entries(STORAGE_DTYPES).map(([name, dtype]): [string, PickleGlobal] => [`torch.${name}`, new TypeMarker(`torch.${name}`, dtype)]),
  ...Object.entries(UNSUPPORTED_STORAGES).map(([name, dtype]): [string, PickleGlobal] => [
    `torch.${name}`,
    new TypeMarker(`torch.${name}`, { unsupported: dtype }),
  ]),
  ...Object.entries(TORCH_DTYPES).map(([name, dtype]): [string, PickleGlobal] => [`torch.${name}`, new TypeMarker(`torch.${name}`, dtype)]),
]);

/** The globals a checkpoint may use: the table above, and the dtypes this package cannot read (as markers, refused per tensor). */
function resolveGlobal(module: string, name: string): PickleGlobal | undefined {
  const known = TORCH_GLOBALS.get(`${module}.${name}`);
  if (known !== undefined || module !== "torch" || !UNSUPPORTED_TORCH_DTYPE.test(name)) return known;
  return new TypeMarker(`torch.${name}`, { unsupported: name });
}

/** What a persistent id loads to; a class of our own so no other pickled value can pass for it. */
class StoredRef {
  constructor(
    readonly storage: TorchStorage,
    readonly type: TypeMarker,
  ) {}
}

function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** `('storage', torch.FloatStorage, '0', 'cpu', 128)` → the storage it names. */
function loadStorage(pid: unknown): StoredRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length !== 5) {
    throw new TypeError("only ('storage', type, key, location, numel) persistent ids are accepted");
  }
  const [, type, key, , numel] = pid;
  if (!(type instanceof TypeMarker) || !(type.name.endsWith("Storage"))) throw new TypeError("the storage type is not a torch.*Storage class");
  if (typeof key !== "string" || !isIndex(numel)) throw new TypeError(`malformed storage id (${String(key)}, ${spell(numel)})`);
  // An unsupported storage keeps its bytes' count: the tensor using it is refused by name when read.
  return new StoredRef({ key, dtype: typeof type.dtype === "object" ? "uint8" : type.dtype, numel }, type);
}

/** The largest `data.pkl` accepted: a state dict of 100,000 tensors pickles to about 20 MB. */
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;

const ZIP_MAGIC = [0x50, 0x4b]; // "PK": a local header (03 04) or an empty archive's end record (05 06)

/** Whether `bytes` is a zip archive. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === ZIP_MAGIC[0] && bytes[1] === ZIP_MAGIC[1] &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

/** The pickle that starts every pre-1.6 checkpoint: PROTO 2, LONG1 of 10 bytes = 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** Whether `bytes` is a checkpoint in torch's legacy (pre-1.6, non-zip) format. */
export function isLegacyTorch(bytes: Uint8Array): boolean {
  return bytes.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.every((byte, i) => bytes[i] === byte);
}

/**
 * Opens a zip checkpoint held in `bytes` and unpickles its `data.pkl` (tensors stay in place).
 * @throws {@link endosynth!CheckpointError | CheckpointError} when the archive is unreadable, has no `<stem>/data.pkl`, or its
 * pickle uses a forbidden global or is malformed.
 */
export function openPth(bytes: Uint8Array, file?: string): PthArchive {
  const where = file ?? "checkpoint";
  const zip = withCheckpointErrors(file, undefined, () => openZip(bytes, file));
  const pickles = [...zip.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw new CheckpointError(
      `${where} is a zip archive but not a PyTorch checkpoint: it has ${pickles.length === 0 ? "no" : "several"} <stem>/data.pkl member${pickles.length > 1 ? "s" : ""}`,
      { file },
    );
  }
  const entry = pickles[0];
  const prefix = entry.slice(0, entry.length - "data.pkl".length);
  const byteOrder = readByteOrder(zip, prefix, file);
  const pickleSize = zip.entries.get(entry)!.size;
  if (pickleSize > MAX_PICKLE_BYTES) {
    throw new CheckpointError(`${where}: ${entry} is ${pickleSize} bytes, more than the ${MAX_PICKLE_BYTES} a state dict's pickle could need`, { file, key: entry });
  }
  const pickle = withCheckpointErrors(file, entry, () => readZipEntry(zip, entry));
  const root = unpickle(pickle, {
    file,
    entry,
    resolveGlobal,
    persistentLoad: loadStorage,
  });
  return { file, zip, prefix, byteOrder, root };
}

function readByteOrder(zip: ZipArchive, prefix: string, file: string | undefined): ByteOrder {
  const entry = `${prefix}byteorder`;
  if (!zip.entries.has(entry)) return "little";
  const text = new TextDecoder().decode(withCheckpointErrors(file, entry, () => readZipEntry(zip, entry))).trim();
  if (text !== "little" && text !== "big") {
    throw new CheckpointError(`${file ?? "checkpoint"}: ${entry} says ${JSON.stringify(text)}; expected "little" or "big"`, { file, key: entry });
  }
  return text;
}

/**
 * Reads one tensor's data: a view into the archive when it is contiguous, little-endian and
 * aligned, else one copy.
 * @param key the state-dict key, for messages.
 * @throws {@link endosynth!CheckpointError | CheckpointError} when its storage is missing, truncated, or too small for the view.
 */
export function readTorchTensor(archive: PthArchive, tensor: TorchTensor, key: string, halfPrecision: HalfPrecision): TensorData {
  const { file, zip, prefix } = archive;
  const fail = (message: string) => new CheckpointError(`${file ?? "checkpoint"}: tensor '${key}': ${message}`, { file, key });
  if (tensor.problem !== undefined) throw fail(tensor.problem);
  const entry = `${prefix}data/${tensor.storage.key}`;
  if (!zip.entries.has(entry)) throw fail(`its storage ${entry} is missing from the archive`);
  const storage = withCheckpointErrors(file, key, () => readZipEntry(zip, entry));
  const { dtype, numel } = tensor.storage;
  const declared = numel * ITEM_SIZE[dtype];
  if (storage.byteLength < declared) {
    throw fail(`its storage ${entry} holds ${storage.byteLength} bytes but is declared as ${numel} ${dtype} elements (${declared} bytes)`);
  }
  const end = layoutByteEnd(tensor);
  if (end > declared) {
    throw fail(
      `its storage ${entry} is too small for it: shape (${tensor.shape.join(", ")}), stride (${tensor.stride.join(", ")}) ` +
        `and offset ${tensor.offset} reach element ${end / ITEM_SIZE[tensor.dtype]} but the storage has ${Math.floor(declared / ITEM_SIZE[tensor.dtype])}`,
    );
  }
  return tensorFromStorage(storage, tensor, { bigEndian: archive.byteOrder === "big", halfPrecision });
}

/** Runs a zip operation; a corrupt or truncated archive becomes a CheckpointError naming file and key. */
function withCheckpointErrors<T>(file: string | undefined, key: string | undefined, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof FileFormatError)) throw error;
    const where = file ?? "checkpoint";
    const detail = error.message.startsWith(`${where}: `) ? error.message.slice(where.length + 2) : error.message;
    throw new CheckpointError(
      `${where}: ${key === undefined ? "" : `${key}: `}the zip archive is truncated or corrupt (an incomplete download?): ${detail}`,
      { file, key, cause: error },
    );
  }
}
