/**
 * Writes torch-compatible `.pth` checkpoints (what `torch.save(state_dict, path)` writes: a zip of
 * `<stem>/data.pkl` in pickle protocol 2, one 64-byte aligned stored member per storage under
 * `<stem>/data/`, `<stem>/version`, `<stem>/byteorder`) from a state dict given as a Map or, for
 * checkpoints larger than memory, as an iterator of `[key, tensor]`: each tensor goes to disk as
 * soon as it is yielded, so only one needs to exist at a time.
 *
 * Test support (benchmark scripts use it too), never part of the package. Tensors may be given as strided views of shared
 * storages ({@link TensorView}) to write what torch writes for `x.t()` or for tied weights.
 *
 * @example
 * ```ts
 * writePth("random.pth", randomStateDictFromKeys(keysJson, 1)); // 1.4 GB in bounded memory
 * ```
 * @module
 */
import { basename, extname } from "node:path";
import { InputError } from "../../lib/errors.js";
import { assertOneOf, assertOptions, assertString, invalidParameter } from "../../lib/is.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { encodeFloat16 } from "../../lib/ndarray/float16.js";
import { ITEM_SIZE, size, validateNdArray, type DType, type NdArray, type TypedArray } from "../../lib/ndarray/ndarray.js";
import { Pickler } from "./pickler.js";
import { STORAGE_DTYPES, type ByteOrder } from "../../lib/checkpoint/pth.js";
import { contiguousStrides, layoutByteEnd } from "../../lib/checkpoint/tensor_data.js";

/** A tensor as a strided view of a storage, as torch saves `x.t()`, `x[1:]` or tied weights. */
export interface TensorView {
  /** The storage: its elements in order (its shape is ignored). Views of one storage object share it in the file. */
  readonly storage: NdArray;
  /** The view's dimensions. */
  readonly shape: readonly number[];
  /** Steps in elements; C-contiguous when omitted. */
  readonly stride?: readonly number[];
  /** Index of the view's first element in the storage; 0 when omitted. */
  readonly offset?: number;
}

/** A tensor to write: an NdArray (its own storage, unless another tensor has the same `data`) or a view. */
export type PthTensor = NdArray | TensorView;

/** A value the writer can pickle beside the state dict (in {@link WritePthOptions.extra}). */
export type PthValue = PthTensor | string | number | bigint | boolean | null | readonly PthValue[] | ReadonlyMap<string, PthValue>;

/** Options of {@link writePth}. */
export interface WritePthOptions {
  /** Byte order of the storages, recorded in `<stem>/byteorder`. Default `"little"`. */
  byteOrder?: ByteOrder;
  /** Name of the records' folder in the archive. Default: the file name without extension, as torch. */
  stem?: string;
  /** Nest the state dict in a dict under this key (`{ model: state_dict }`), as training scripts do. */
  wrapIn?: string;
  /**
   * Other entries, written after the state dict: in the outer dict with `wrapIn`, otherwise in the
   * state dict itself (as EndoDAC's trainer adds `height`, `width`, `use_stereo`).
   */
  extra?: ReadonlyMap<string, PthValue>;
}

/** What {@link writePth} wrote. */
export interface WritePthResult {
  /** Tensors in the state dict. */
  readonly tensors: number;
  /** Storages written (fewer than tensors when some share one). */
  readonly storages: number;
  /** Elements over all state-dict tensors. */
  readonly parameters: number;
}

/** torch's storage class for each dtype it can save (torch has none for uint16/32/64). */
const STORAGE_CLASSES: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([name, dtype]) => [dtype, name]));

const STORAGE_ALIGNMENT = 64;
const FORMAT_VERSION = "3\n";

/**
 * Writes a state dict to `path` as torch >= 1.6 does (atomically: a temporary file renamed into
 * place). The state dict is pickled as an `OrderedDict`, alone or inside a plain dict (`wrapIn`).
 * @throws {InputError} for a dtype torch cannot store, a view outside its storage, or bad options.
 */
export function writePth(path: string, stateDict: Iterable<readonly [string, PthTensor]>, options?: WritePthOptions): WritePthResult {
  assertString("path", path);
  assertOptions("options", options as unknown, ["byteOrder", "stem", "wrapIn", "extra"]);
  const byteOrder = options?.byteOrder ?? "little";
  assertOneOf("options.byteOrder", byteOrder, ["little", "big"]);
  const stem = options?.stem ?? basename(path, extname(path));
  assertString("options.stem", stem);
  if (options?.wrapIn !== undefined) assertString("options.wrapIn", options.wrapIn);

  const zip = new ZipWriter(path);
  try {
    const writer = new StorageWriter(zip, stem, byteOrder);
    const pickler = new Pickler();
    if (options?.wrapIn !== undefined) pickler.emptyDict().string(options.wrapIn);
    const result = pickleStateDict(pickler, writer, stateDict);
    if (options?.wrapIn !== undefined) pickler.setItem();
    for (const [key, value] of options?.extra ?? []) {
      pickleValue(pickler.string(key), writer, value, key);
      pickler.setItem();
    }
    zip.add(`${stem}/data.pkl`, pickler.finish());
    zip.add(`${stem}/byteorder`, new TextEncoder().encode(byteOrder));
    zip.add(`${stem}/version`, new TextEncoder().encode(FORMAT_VERSION));
    zip.finish();
    return { ...result, storages: writer.count };
  } catch (error) {
    zip.abort();
    throw error;
  }
}

function pickleStateDict(pickler: Pickler, writer: StorageWriter, stateDict: Iterable<readonly [string, PthTensor]>): Omit<WritePthResult, "storages"> {
  pickler.global("collections", "OrderedDict").emptyTuple().reduce();
  let tensors = 0;
  let parameters = 0;
  for (const [key, tensor] of stateDict) {
    assertString("state dict key", key);
    pickleTensor(pickler.string(key), writer, tensor, key);
    pickler.setItem();
    tensors++;
    parameters += size(tensor.shape);
  }
  return { tensors, parameters };
}

function pickleValue(pickler: Pickler, writer: StorageWriter, value: PthValue, key: string): void {
  if (value === null) pickler.none();
  else if (typeof value === "boolean") pickler.bool(value);
  else if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) pickler.int(value);
  else if (typeof value === "number") pickler.float(value);
  else if (typeof value === "string") pickler.string(value);
  else if (Array.isArray(value)) {
    pickler.emptyList();
    for (const item of value as readonly PthValue[]) {
      pickleValue(pickler, writer, item, key);
      pickler.append();
    }
  } else if (value instanceof Map) {
    pickler.emptyDict();
    for (const [name, item] of value as ReadonlyMap<string, PthValue>) {
      pickleValue(pickler.string(name), writer, item, `${key}.${name}`);
      pickler.setItem();
    }
  } else pickleTensor(pickler, writer, value as PthTensor, key);
}

/**
 * `_rebuild_tensor_v2((storage pid), offset, shape, stride, False, OrderedDict())`, as torch pickles a
 * tensor; the same tensor object a second time is a reference to the first (BINGET), as in pickle.
 */
function pickleTensor(pickler: Pickler, writer: StorageWriter, tensor: PthTensor, key: string): void {
  const known = writer.pickled.get(tensor);
  if (known !== undefined) {
    pickler.recall(known);
    return;
  }
  const view = asView(tensor, key);
  const storage = writer.storageOf(view.storage, key);
  pickler.global("torch._utils", "_rebuild_tensor_v2").mark();
  pickler.mark().string("storage").global("torch", storage.className).string(storage.key).string("cpu").int(storage.numel).tuple();
  pickler.persistentId();
  pickler.int(view.offset).intTuple(view.shape).intTuple(view.stride).bool(false);
  pickler.global("collections", "OrderedDict").emptyTuple().reduce();
  pickler.tuple().reduce();
  writer.pickled.set(tensor, pickler.remember());
}

function asView(tensor: PthTensor, key: string): Required<TensorView> {
  if ("storage" in tensor) {
    const storage = validateNdArray(tensor.storage, `${key}.storage`);
    const shape = [...tensor.shape];
    const stride = tensor.stride ? [...tensor.stride] : contiguousStrides(shape);
    const offset = tensor.offset ?? 0;
    const end = layoutByteEnd({ dtype: storage.dtype, shape, stride, offset });
    if (stride.length !== shape.length || end > size(storage.shape) * ITEM_SIZE[storage.dtype]) {
      throw new InputError(
        `Tensor '${key}': shape (${shape.join(", ")}), stride (${stride.join(", ")}) and offset ${offset} do not fit its storage of ${size(storage.shape)} elements`,
        { key },
      );
    }
    return { storage, shape, stride, offset };
  }
  const array = validateNdArray(tensor, key);
  return { storage: array, shape: [...array.shape], stride: contiguousStrides(array.shape), offset: 0 };
}

interface WrittenStorage {
  readonly key: string;
  readonly className: string;
  readonly numel: number;
}

/**
 * Writes each storage once, as soon as a tensor first uses it. Storages are recognised by their
 * data array, held weakly so a streamed state dict's tensors can be collected once written.
 */
class StorageWriter {
  private readonly written = new WeakMap<TypedArray, WrittenStorage>();
  /** Memo index of each tensor object already pickled. */
  readonly pickled = new WeakMap<PthTensor, number>();
  count = 0;

  constructor(
    private readonly zip: ZipWriter,
    private readonly stem: string,
    private readonly byteOrder: ByteOrder,
  ) {}

  storageOf(storage: NdArray, key: string): WrittenStorage {
    const known = this.written.get(storage.data);
    if (known) return known;
    const className = STORAGE_CLASSES[storage.dtype];
    if (!className) throw invalidParameter(`${key}.dtype`, `a dtype torch can store (${Object.keys(STORAGE_CLASSES).join(", ")})`, storage.dtype);
    const entry: WrittenStorage = { key: String(this.count++), className, numel: size(storage.shape) };
    this.zip.add(`${this.stem}/data/${entry.key}`, storageBytes(storage, this.byteOrder), { align: STORAGE_ALIGNMENT });
    this.written.set(storage.data, entry);
    return entry;
  }
}

/** The storage's elements as torch stores them: halves as 16-bit patterns, in the requested byte order. */
function storageBytes(storage: NdArray, byteOrder: ByteOrder): Uint8Array {
  let data: TypedArray = storage.data;
  if (data instanceof Float32Array && storage.dtype === "float16") data = encodeFloat16(data);
  else if (data instanceof Float32Array && storage.dtype === "bfloat16") data = encodeBfloat16(data);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const itemSize = ITEM_SIZE[storage.dtype];
  if (byteOrder === "little" || itemSize === 1) return bytes;
  const swapped = Buffer.from(bytes);
  if (itemSize === 2) swapped.swap16();
  else if (itemSize === 4) swapped.swap32();
  else swapped.swap64();
  return swapped;
}

/** Rounds float32 values to bfloat16 (nearest, ties to even, NaN kept NaN), as torch's `.bfloat16()`. */
function encodeBfloat16(values: Float32Array): Uint16Array {
  const wide = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < wide.length; i++) {
    const bits = wide[i];
    if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) out[i] = (bits >>> 16) | 0x40;
    else out[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
  return out;
}
