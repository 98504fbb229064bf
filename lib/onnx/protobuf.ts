/**
 * A minimal protobuf wire-format encoder: just what the ONNX writer needs (varints, 32-bit floats,
 * length-delimited bytes, strings and nested messages, packed repeated scalars).
 *
 * A message is kept as a list of byte chunks, never one buffer: large byte fields (tensor data) are
 * referenced as they are, so a model is written to disk chunk by chunk without its weights ever
 * being copied or concatenated.
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Chunks smaller than this are copied into the running scratch buffer instead of kept by reference. */
const INLINE_LIMIT = 256;

const FIXED32_VIEW = new DataView(new ArrayBuffer(4));

/** Encoder of one protobuf message; nest messages with {@link ProtoWriter.message}. */
export class ProtoWriter {
  readonly #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #byteLength = 0;

  /** Encoded size in bytes so far. */
  get byteLength(): number {
    return this.#byteLength;
  }

  /** The encoded message as chunks to be written in order. */
  chunks(): Uint8Array[] {
    this.#flush();
    return [...this.#chunks];
  }

  /** An int32/int64/uint64/enum/bool field. Negative values take 10 bytes (two's complement), as protobuf requires. */
  varint(field: number, value: number | bigint | boolean): this {
    this.#tag(field, WIRE_VARINT);
    this.#varint(typeof value === "boolean" ? (value ? 1 : 0) : value);
    return this;
  }

  /** A `float` field (fixed 32-bit, little-endian). */
  float(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    this.#fixed32(value);
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** A `bytes` field; large arrays are referenced, not copied. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(value.byteLength);
    this.#append(value);
    return this;
  }

  /** A nested message field. */
  message(field: number, message: ProtoWriter): this {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(message.byteLength);
    for (const chunk of message.chunks()) this.#append(chunk);
    return this;
  }

  /** A packed repeated varint field (`repeated int64 ... [packed]`); omitted when empty. */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const body = new ProtoWriter();
    for (const value of values) body.#varint(value);
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(body.byteLength);
    for (const chunk of body.chunks()) this.#append(chunk);
    return this;
  }

  /** A packed repeated float field; omitted when empty. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(values.length * 4);
    for (const value of values) this.#fixed32(value);
    return this;
  }

  #tag(field: number, wireType: number): void {
    this.#varint((field << 3) | wireType);
  }

  #varint(value: number | bigint): void {
    if (typeof value === "number" && value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      if (!Number.isInteger(value)) throw new RangeError(`protobuf varint must be an integer, got ${value}`);
      let rest = value;
      while (rest >= 0x80) {
        this.#byte((rest % 0x80) | 0x80);
        rest = Math.floor(rest / 0x80);
      }
      this.#byte(rest);
      return;
    }
    let rest = BigInt.asUintN(64, BigInt(value));
    while (rest >= 0x80n) {
      this.#byte(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.#byte(Number(rest));
  }

  #fixed32(value: number): void {
    FIXED32_VIEW.setFloat32(0, value, true);
    for (let i = 0; i < 4; i++) this.#byte(FIXED32_VIEW.getUint8(i));
  }

  #byte(byte: number): void {
    this.#scratch.push(byte);
    this.#byteLength += 1;
  }

  #append(chunk: Uint8Array): void {
    if (chunk.byteLength < INLINE_LIMIT) {
      for (const byte of chunk) this.#scratch.push(byte);
    } else {
      this.#flush();
      this.#chunks.push(chunk);
    }
    this.#byteLength += chunk.byteLength;
  }

  #flush(): void {
    if (this.#scratch.length === 0) return;
    this.#chunks.push(Uint8Array.from(this.#scratch));
    this.#scratch = [];
  }
}
