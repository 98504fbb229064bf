/**
 * PyTorch checkpoints as `torch.save` writes them since torch 1.6: a zip archive holding
 * `<stem>/data.pkl` (the pickled object, tensors as persistent ids naming storages),
 * `<stem>/data/<key>` (each storage's raw bytes, stored, 64-byte aligned), `<stem>/version`, and
 * since torch 2.1 `<stem>/byteorder` (`little` when absent).
 *
 * The pickle is read by our own {@link unpickle} with only the globals a state dict needs; tensors
 * come out as {@link TorchTensor} descriptions and their data is read on demand with
 * {@link readTorchTensor}, as views into the archive's bytes wherever alignment allows.
 * @internal
 * @module
 */
import { CheckpointError, FileFormatError } from "../errors.js";
import { openZip, readZipEntry, type ZipArchive } from "../io/zip.js";
import { ITEM_SIZE, type DType, type HalfPrecision } from "../ndarray/ndarray.js";
import { unpickle, type PickleGlobal } from "./pickle.js";
import { layoutByteEnd, tensorFromStorage, type TensorData, type TensorLayout } from "./tensor_data.js";

/** Byte order of a checkpoint's storages. */
export type ByteOrder = "little" | "big";

/** A storage as a persistent id names it. */
export interface TorchStorage {
  /** Its name under `<stem>/data/`. */
  readonly key: string;
  /** Element type, from the storage class (`torch.FloatStorage` → float32). */
  readonly dtype: DType;
  /** Number of elements it holds. */
  readonly numel: number;
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of a storage. */
export class TorchTensor implements TensorLayout {
  constructor(
    /** The storage it views (several tensors may view the same one). */
    readonly storage: TorchStorage,
    /** Index of its first element in the storage. */
    readonly offset: number,
    /** Its dimensions. */
    readonly shape: readonly number[],
    /** Its strides, in elements. */
    readonly stride: readonly number[],
  ) {}

  /** Element type (the storage's). */
  get dtype(): DType {
    return this.storage.dtype;
  }
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

/** A storage class: only ever a marker inside a persistent id, never called. */
class StorageType implements PickleGlobal {
  constructor(
    readonly name: string,
    readonly dtype: DType,
  ) {}

  call(): never {
    throw new TypeError(`${this.name} is only accepted inside a storage's persistent id`);
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

const REBUILD_TENSOR: PickleGlobal = {
  name: "torch._utils._rebuild_tensor_v2",
  call(args) {
    const [storage, offset, shape, stride] = args;
    if (!(storage instanceof StoredRef)) throw new TypeError("its first argument is not a storage");
    if (!isIndex(offset)) throw new TypeError(`storage offset ${String(offset)} is not a non-negative integer`);
    if (!isIndexList(shape)) throw new TypeError(`size ${String(shape)} is not a tuple of non-negative integers`);
    if (!isIndexList(stride) || stride.length !== shape.length) {
      throw new TypeError(`stride ${String(stride)} does not match size (${shape.join(", ")})`);
    }
    return new TorchTensor(storage.storage, offset, shape, stride);
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

const TORCH_GLOBALS: ReadonlyMap<string, PickleGlobal> = new Map<string, PickleGlobal>([
  ["collections.OrderedDict", ORDERED_DICT],
  ["torch._utils._rebuild_tensor_v2", REBUILD_TENSOR],
  ["torch._utils._rebuild_parameter", rebuildParameter("torch._utils._rebuild_parameter")],
  ["torch._utils._rebuild_parameter_with_state", rebuildParameter("torch._utils._rebuild_parameter_with_state")],
  ...Object.entries(STORAGE_DTYPES).map(([name, dtype]): [string, PickleGlobal] => [`torch.${name}`, new StorageType(`torch.${name}`, dtype)]),
]);

/** What a persistent id loads to; a class of our own so no other pickled value can pass for it. */
class StoredRef {
  constructor(readonly storage: TorchStorage) {}
}

function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isIndexList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isIndex);
}

/** `('storage', torch.FloatStorage, '0', 'cpu', 128)` → the storage it names. */
function loadStorage(pid: unknown): StoredRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length !== 5) {
    throw new TypeError("only ('storage', type, key, location, numel) persistent ids are accepted");
  }
  const [, type, key, , numel] = pid;
  if (!(type instanceof StorageType)) throw new TypeError("the storage type is not a torch.*Storage class");
  if (typeof key !== "string" || !isIndex(numel)) throw new TypeError(`malformed storage id (${String(key)}, ${String(numel)})`);
  return new StoredRef({ key, dtype: type.dtype, numel });
}

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
 * @throws {CheckpointError} when the archive is unreadable, has no `<stem>/data.pkl`, or its
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
  const pickle = withCheckpointErrors(file, entry, () => readZipEntry(zip, entry));
  const root = unpickle(pickle, {
    file,
    entry,
    resolveGlobal: (module, name) => TORCH_GLOBALS.get(`${module}.${name}`),
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
 * @throws {CheckpointError} when its storage is missing, truncated, or too small for the view.
 */
export function readTorchTensor(archive: PthArchive, tensor: TorchTensor, key: string, halfPrecision: HalfPrecision): TensorData {
  const { file, zip, prefix } = archive;
  const fail = (message: string) => new CheckpointError(`${file ?? "checkpoint"}: tensor '${key}': ${message}`, { file, key });
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
        `and offset ${tensor.offset} reach element ${end / ITEM_SIZE[dtype]} but the storage has ${numel}`,
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
