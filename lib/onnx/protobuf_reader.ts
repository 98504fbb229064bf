/**
 * A minimal, bounds-checked protobuf wire-format decoder: field headers and varints, and an
 * iterator over the fields of a message held in memory. {@link readFieldHeader} decodes a field's
 * tag and extent without touching its value, so a file reader can walk a message by positional
 * reads and skip large fields (an ONNX graph with embedded weights) unread.
 *
 * Only the four wire types proto3 messages use are accepted; groups (3, 4) and the undefined
 * types 6 and 7 are errors, as is a varint of more than 10 bytes or a field that runs past the end.
 * @module
 */
import { FileFormatError } from "../errors.js";

/** The wire types the decoder accepts: varint, fixed64, length-delimited, fixed32. @internal */
export type WireType = 0 | 1 | 2 | 5;

/** The longest varint protobuf allows (a 64-bit value, 7 bits a byte). @internal */
export const MAX_VARINT_BYTES = 10;
/**
 * The longest header a field can have: a tag and a length prefix, each at most a full varint.
 * Reading this many bytes (or up to the end) at a field's start is always enough to decode it.
 * @internal
 */
export const MAX_FIELD_HEADER_BYTES = 2 * MAX_VARINT_BYTES;

/** Field numbers are 29-bit (protobuf's limit), and 0 is reserved. */
const MAX_FIELD_NUMBER = 2 ** 29 - 1;

/** A varint and where its encoding ends. @internal */
export interface Varint {
  /** The value as an unsigned 64-bit integer (`BigInt.asIntN(64, value)` for int64 fields). */
  value: bigint;
  /** Offset just past the varint's last byte. */
  end: number;
}

/**
 * The tag and extent of one field, with its value not yet read (except a varint's, which is part
 * of the header's decoding anyway).
 * @internal
 */
export interface FieldHeader {
  /** The field number. */
  number: number;
  /** How the value is encoded. */
  wireType: WireType;
  /** Offset of the value: past the tag and, for length-delimited fields, the length prefix. */
  valueOffset: number;
  /** Bytes the value takes (for a varint, its encoding's length). */
  valueLength: number;
  /** The value of a varint field (wire type 0). */
  varint?: bigint;
}

/**
 * One decoded field of a message in memory: a varint's value, or for the other wire types the
 * value's bytes (a view into the message; 8 bytes for fixed64, 4 for fixed32).
 * @internal
 */
export type ProtoField = { number: number; wireType: 0; value: bigint } | { number: number; wireType: 1 | 2 | 5; value: Uint8Array };

/**
 * Decodes the varint at `offset`.
 * @param origin Where `bytes[0]` lies in the whole message, so error messages give true offsets.
 * @throws {@link endosynth!FileFormatError | FileFormatError} when `bytes` ends inside the varint, or it is longer than 10 bytes.
 * @internal
 */
export function readVarint(bytes: Uint8Array, offset: number, origin = 0): Varint {
  let value = 0n;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const at = offset + i;
    if (at >= bytes.length) throw new FileFormatError(`truncated varint at byte ${origin + offset}`);
    const byte = bytes[at];
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) return { value: BigInt.asUintN(64, value), end: at + 1 };
  }
  throw new FileFormatError(`varint longer than ${MAX_VARINT_BYTES} bytes at byte ${origin + offset}`);
}

/**
 * Decodes the header of the field starting at `offset`. The value's extent is not checked against
 * `bytes`: the caller checks it against the end of the message, which may lie beyond `bytes`.
 * @param origin Where `bytes[0]` lies in the whole message, so error messages give true offsets.
 * @throws {@link endosynth!FileFormatError | FileFormatError} for a truncated or over-long varint, a field number out of range, or
 * a wire type other than 0, 1, 2 or 5.
 * @internal
 */
export function readFieldHeader(bytes: Uint8Array, offset: number, origin = 0): FieldHeader {
  const tag = readVarint(bytes, offset, origin);
  const wireType = Number(tag.value & 7n);
  const number = tag.value >> 3n;
  if (number < 1n || number > BigInt(MAX_FIELD_NUMBER)) {
    throw new FileFormatError(`invalid field number ${number} at byte ${origin + offset}`);
  }
  const field = Number(number);
  switch (wireType) {
    case 0: {
      const varint = readVarint(bytes, tag.end, origin);
      return { number: field, wireType, valueOffset: tag.end, valueLength: varint.end - tag.end, varint: varint.value };
    }
    case 1:
      return { number: field, wireType, valueOffset: tag.end, valueLength: 8 };
    case 5:
      return { number: field, wireType, valueOffset: tag.end, valueLength: 4 };
    case 2: {
      const length = readVarint(bytes, tag.end, origin);
      // A length beyond 2^53 loses precision here, but still runs past any real end, as it should.
      return { number: field, wireType, valueOffset: length.end, valueLength: Number(length.value) };
    }
    default:
      throw new FileFormatError(`field ${field} has unsupported wire type ${wireType} at byte ${origin + offset}`);
  }
}

/**
 * The fields of a message held in memory, in order; values are views into `bytes`, not copies.
 * @throws {@link endosynth!FileFormatError | FileFormatError} (while iterating) for a malformed field, or one that runs past the end.
 * @example
 * ```ts
 * for (const field of protoFields(bytes)) if (field.number === 14 && field.wireType === 2) entries.push(field.value);
 * ```
 * @internal
 */
export function* protoFields(bytes: Uint8Array): Generator<ProtoField> {
  let offset = 0;
  while (offset < bytes.length) {
    const header = readFieldHeader(bytes, offset);
    const end = header.valueOffset + header.valueLength;
    if (end > bytes.length) {
      throw new FileFormatError(`field ${header.number} at byte ${offset} runs past the end of the message (truncated?)`);
    }
    if (header.wireType === 0) yield { number: header.number, wireType: 0, value: header.varint! };
    else yield { number: header.number, wireType: header.wireType, value: bytes.subarray(header.valueOffset, end) };
    offset = end;
  }
}
