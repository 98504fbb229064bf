/**
 * Reads what an ONNX model says about itself (ir_version, producer, opsets, `metadata_props`)
 * without loading it: the top-level fields of the ModelProto are walked through a 1 MiB window
 * over the file (so thousands of small fields cost one read, not thousands), the few small ones
 * decoded, and the rest (the graph above all, which holds embedded weights and can be more than a
 * gigabyte) skipped by their length, unread.
 * @module
 */
import { open, type FileHandle } from "node:fs/promises";
import { FileFormatError } from "../errors.js";
import { unreadableReason } from "../io/read_file.js";
import { MAX_FIELD_HEADER_BYTES, protoFields, readFieldHeader, type FieldHeader, type ProtoField } from "./protobuf_reader.js";

/** An operator set the model imports (ModelProto.opset_import). */
export interface OpsetImport {
  /** The operator domain; `""` is the default ONNX domain. */
  domain: string;
  /** The opset version. */
  version: number;
}

/** What {@link readOnnxMetadata} reads from an ONNX model. */
export interface OnnxModelInfo {
  /** `metadata_props` as key → value; `{}` when the model has none. */
  metadata: Record<string, string>;
  /** ONNX IR version (ModelProto.ir_version). */
  irVersion?: number;
  /** The tool that wrote the model, e.g. `"endosynth"` or `"pytorch"`. */
  producerName?: string;
  /** That tool's version. */
  producerVersion?: string;
  /** The operator sets the graph uses, in file order. */
  opsetImports: OpsetImport[];
}

/** ModelProto field numbers (onnx/onnx.proto). */
const FIELD = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8, metadataProps: 14 } as const;
/** The fields this reader decodes, with the one wire type each may have. */
const DECODED_WIRE_TYPE: ReadonlyMap<number, number> = new Map([
  [FIELD.irVersion, 0],
  [FIELD.producerName, 2],
  [FIELD.producerVersion, 2],
  [FIELD.graph, 2],
  [FIELD.opsetImport, 2],
  [FIELD.metadataProps, 2],
]);
/**
 * The largest decoded field the reader reads into memory: far beyond any real metadata entry,
 * and small enough that a corrupt length cannot make it allocate gigabytes.
 */
const MAX_DECODED_FIELD_BYTES = 16 * 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The metadata of the ONNX model at `path`, read without loading the model: only the file's
 * top-level fields are visited and the graph is skipped, so this takes the same few reads for a
 * 1 KB model as for a 1.4 GB one with embedded weights. External data files are not opened.
 *
 * @example
 * ```ts
 * const { metadata } = await readOnnxMetadata("dav2.onnx");
 * if (metadata.model !== "dav2") throw new Error(`dav2.onnx holds ${metadata.model ?? "an unknown model"}`);
 * ```
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file: when it is missing or unreadable ("cannot read the
 * file: no such file", as every reader of the package says), or is not an ONNX ModelProto (a bad
 * wire type, a truncated varint, a field running past the end of the file, no ir_version or
 * graph, metadata that is not UTF-8 or repeats a key).
 */
export async function readOnnxMetadata(path: string): Promise<OnnxModelInfo> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw unreadable(path, error);
  }
  try {
    return await readModelFields(handle, path);
  } catch (error) {
    if (!(error instanceof FileFormatError)) throw unreadable(path, error);
    // Problems with the contents are found without the path at hand: name the file here.
    if (error.file === undefined) throw new FileFormatError(`${path}: not an ONNX model: ${error.message}`, { file: path, cause: error });
    throw error;
  } finally {
    await handle.close();
  }
}

function unreadable(path: string, error: unknown): FileFormatError {
  return new FileFormatError(`${path}: cannot read the file: ${unreadableReason(error)}`, { file: path, cause: error });
}

/** The window read at once: a few reads for a model's top-level fields, whatever their number. */
const WINDOW_BYTES = 1 << 20;

/**
 * Reads a file through a window of {@link WINDOW_BYTES}: bytes inside the window are served from
 * memory, others trigger one positional read that refills it (or, for a value larger than the
 * window, reads that value alone).
 */
class WindowedFile {
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #size: number;
  readonly #window = Buffer.allocUnsafeSlow(WINDOW_BYTES);
  #start = 0;
  #length = 0;

  constructor(handle: FileHandle, path: string, size: number) {
    this.#handle = handle;
    this.#path = path;
    this.#size = size;
  }

  /**
   * `min(length, size - position)` bytes from `position`: a view into the window, valid until
   * the next call, or a fresh buffer for a span larger than the window.
   */
  async bytes(position: number, length: number): Promise<Uint8Array> {
    const wanted = Math.min(length, this.#size - position);
    if (position >= this.#start && position + wanted <= this.#start + this.#length) {
      return this.#window.subarray(position - this.#start, position - this.#start + wanted);
    }
    if (wanted > WINDOW_BYTES) {
      const value = new Uint8Array(wanted);
      await readExactly(this.#handle, value, position, this.#path);
      return value;
    }
    this.#start = position;
    this.#length = Math.min(WINDOW_BYTES, this.#size - position);
    await readExactly(this.#handle, this.#window.subarray(0, this.#length), position, this.#path);
    return this.#window.subarray(0, wanted);
  }
}

async function readModelFields(handle: FileHandle, path: string): Promise<OnnxModelInfo> {
  const { size } = await handle.stat();
  const file = new WindowedFile(handle, path, size);
  const info: OnnxModelInfo = { metadata: {}, opsetImports: [] };
  let hasGraph = false;
  for (let position = 0; position < size; ) {
    const header = readFieldHeader(await file.bytes(position, MAX_FIELD_HEADER_BYTES), 0, position);
    const valueStart = position + header.valueOffset;
    const end = valueStart + header.valueLength;
    if (end > size) throw new FileFormatError(`field ${header.number} at byte ${position} runs past the end of the file (truncated?)`);
    checkWireType(header);
    if (header.number === FIELD.graph) hasGraph = true;
    else if (header.number === FIELD.irVersion) info.irVersion = Number(BigInt.asIntN(64, header.varint!));
    else if (DECODED_WIRE_TYPE.has(header.number)) {
      if (header.valueLength > MAX_DECODED_FIELD_BYTES) {
        throw new FileFormatError(`field ${header.number} at byte ${valueStart} claims ${header.valueLength} bytes, more than ${MAX_DECODED_FIELD_BYTES}`);
      }
      decodeField(info, header.number, await file.bytes(valueStart, header.valueLength));
    }
    position = end;
  }
  if (info.irVersion === undefined) throw new FileFormatError(`it has no ir_version (field ${FIELD.irVersion})`);
  if (!hasGraph) throw new FileFormatError(`it has no graph (field ${FIELD.graph})`);
  return info;
}

function checkWireType(header: FieldHeader): void {
  const expected = DECODED_WIRE_TYPE.get(header.number);
  if (expected !== undefined && header.wireType !== expected) {
    throw new FileFormatError(`field ${header.number} has wire type ${header.wireType}, expected ${expected}`);
  }
}

function decodeField(info: OnnxModelInfo, number: number, value: Uint8Array): void {
  if (number === FIELD.producerName) info.producerName = text(value, "producer_name");
  else if (number === FIELD.producerVersion) info.producerVersion = text(value, "producer_version");
  else if (number === FIELD.opsetImport) info.opsetImports.push(opsetImport(value));
  else if (number === FIELD.metadataProps) {
    const [key, entry] = metadataEntry(value);
    if (Object.hasOwn(info.metadata, key)) throw new FileFormatError(`metadata_props repeats the key "${key}"`);
    info.metadata[key] = entry;
  }
}

/** A StringStringEntryProto: key = 1, value = 2. */
function metadataEntry(bytes: Uint8Array): [string, string] {
  let key = "";
  let value = "";
  for (const field of protoFields(bytes)) {
    if (field.number === 1) key = text(bytesOf(field, "metadata_props key"), "metadata_props key");
    else if (field.number === 2) value = text(bytesOf(field, "metadata_props value"), `metadata_props value of "${key}"`);
  }
  return [key, value];
}

/** An OperatorSetIdProto: domain = 1, version = 2. */
function opsetImport(bytes: Uint8Array): OpsetImport {
  const opset: OpsetImport = { domain: "", version: 0 };
  for (const field of protoFields(bytes)) {
    if (field.number === 1) opset.domain = text(bytesOf(field, "opset_import domain"), "opset_import domain");
    else if (field.number === 2) {
      if (field.wireType !== 0) throw new FileFormatError(`opset_import version has wire type ${field.wireType}, expected 0`);
      opset.version = Number(BigInt.asIntN(64, field.value));
    }
  }
  return opset;
}

function bytesOf(field: ProtoField, what: string): Uint8Array {
  if (field.wireType !== 2) throw new FileFormatError(`${what} has wire type ${field.wireType}, expected 2`);
  return field.value;
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new FileFormatError(`${what} is not UTF-8`);
  }
}

/** Fills `buffer` from `position`; a short read means the file shrank under us. */
async function readExactly(handle: FileHandle, buffer: Uint8Array, position: number, path: string): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) {
      throw new FileFormatError(`${path}: the file ended at byte ${position + filled} while being read (it changed?)`, { file: path });
    }
    filled += bytesRead;
  }
}
