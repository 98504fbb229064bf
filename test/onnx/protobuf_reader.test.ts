import test from "ava";
import { FileFormatError } from "../../lib/errors.js";
import { protoFields, readFieldHeader, readVarint } from "../../lib/onnx/protobuf_reader.js";
import { packedVarints } from "./onnx_reader.js";

// Encodings below are the protobuf encoding guide's worked examples and hand-derived bytes.
const decode = (bytes: number[]) => [...protoFields(Uint8Array.from(bytes))];
const FORMAT_ERROR = { instanceOf: FileFormatError, code: "ERR_ENDOSYNTH_FILE_FORMAT" } as const;

test("a varint field decodes the guide's 08 96 01 as field 1 = 150", (t) => {
  t.deepEqual(decode([0x08, 0x96, 0x01]), [{ number: 1, wireType: 0, value: 150n }]);
});

test("a ten-byte varint keeps all 64 bits (int64 -1)", (t) => {
  const [field] = decode([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  t.is(field.number, 3);
  t.is(field.value, 2n ** 64n - 1n);
  t.is(BigInt.asIntN(64, field.value as bigint), -1n);
});

test("an eleven-byte varint is refused", (t) => {
  const bytes = Uint8Array.from([...new Array(10).fill(0x80), 0x01]);
  t.throws(() => readVarint(bytes, 0), { ...FORMAT_ERROR, message: "varint longer than 10 bytes at byte 0" });
});

test("a varint cut off by the end of the message is a truncated varint, with its offset", (t) => {
  t.throws(() => decode([0x08, 0x96]), { ...FORMAT_ERROR, message: "truncated varint at byte 1" });
  t.throws(() => decode([0x08, 0x01, 0x96]), { ...FORMAT_ERROR, message: "truncated varint at byte 2" });
});

test("a string field is a view of its bytes (the guide's 12 07 'testing')", (t) => {
  const [field] = decode([0x12, 0x07, ...Buffer.from("testing")]);
  t.is(field.wireType, 2);
  t.is(Buffer.from(field.value as Uint8Array).toString(), "testing");
});

test("a nested message decodes with the same iterator (the guide's 1a 03 08 96 01)", (t) => {
  const [outer] = decode([0x1a, 0x03, 0x08, 0x96, 0x01]);
  t.is(outer.number, 3);
  t.deepEqual([...protoFields(outer.value as Uint8Array)], [{ number: 1, wireType: 0, value: 150n }]);
});

test("fixed64 and fixed32 fields take 8 and 4 bytes", (t) => {
  const fields = decode([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 0x00, 0x00, 0xc0, 0x3f]);
  t.deepEqual(fields.map((f) => [f.number, f.wireType, [...(f.value as Uint8Array)]]), [
    [1, 1, [1, 2, 3, 4, 5, 6, 7, 8]],
    [2, 5, [0x00, 0x00, 0xc0, 0x3f]],
  ]);
  t.is(Buffer.from(fields[1].value as Uint8Array).readFloatLE(), 1.5);
});

test("a length-delimited field longer than the rest of the message runs past the end", (t) => {
  t.throws(() => decode([0x08, 0x01, 0x12, 0x07, ...Buffer.from("tes")]), {
    ...FORMAT_ERROR,
    message: "field 2 at byte 2 runs past the end of the message (truncated?)",
  });
});

test("fixed fields cut short run past the end", (t) => {
  t.throws(() => decode([0x09, 1, 2, 3]), { ...FORMAT_ERROR, message: /^field 1 at byte 0 runs past the end/ });
  t.throws(() => decode([0x15, 1, 2, 3]), { ...FORMAT_ERROR, message: /^field 2 at byte 0 runs past the end/ });
});

for (const wireType of [3, 4, 6, 7]) {
  test(`wire type ${wireType} is refused, naming the field and the type`, (t) => {
    t.throws(() => decode([(5 << 3) | wireType, 0x00]), { ...FORMAT_ERROR, message: `field 5 has unsupported wire type ${wireType} at byte 0` });
  });
}

test("field number 0 is refused", (t) => {
  t.throws(() => decode([0x00, 0x00]), { ...FORMAT_ERROR, message: "invalid field number 0 at byte 0" });
});

test("a field header gives the value's extent without needing the value's bytes", (t) => {
  // Field 7, length-delimited, 1 GiB (80 80 80 80 04), followed by nothing.
  const header = readFieldHeader(Uint8Array.from([0x3a, 0x80, 0x80, 0x80, 0x80, 0x04]), 0);
  t.deepEqual(header, { number: 7, wireType: 2, valueOffset: 6, valueLength: 2 ** 30 });
});

test("errors in a window of a larger message give offsets in the whole message", (t) => {
  t.throws(() => readFieldHeader(Uint8Array.from([0x08, 0x96]), 0, 1000), { ...FORMAT_ERROR, message: "truncated varint at byte 1001" });
});

test("packed varints decode the guide's 03 8e 02 9e a7 05 as 3, 270, 86942", (t) => {
  t.deepEqual(packedVarints(Uint8Array.from([0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05])), [3n, 270n, 86942n]);
  t.deepEqual(packedVarints(new Uint8Array(0)), []);
  t.throws(() => packedVarints(Uint8Array.from([0x03, 0x8e])), { ...FORMAT_ERROR, message: "truncated varint at byte 1" });
});
