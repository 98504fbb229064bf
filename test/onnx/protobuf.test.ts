import test from "ava";
import { ProtoWriter } from "../../lib/onnx/protobuf.js";

function bytes(writer: ProtoWriter): number[] {
  return [...Buffer.concat(writer.chunks())];
}

// Expected bytes below are the protobuf encoding guide's worked examples and hand-derived encodings.
test("a varint field encodes 150 as the encoding guide's 08 96 01", (t) => {
  t.deepEqual(bytes(new ProtoWriter().varint(1, 150)), [0x08, 0x96, 0x01]);
});

test("a negative int64 takes ten bytes of two's complement", (t) => {
  t.deepEqual(bytes(new ProtoWriter().varint(3, -1)), [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
});

test("varints beyond 32 bits keep every bit", (t) => {
  // 2^35 + 1 = 0b1 0000000 0000000 0000000 0000000 0000001 → 81 80 80 80 80 01
  t.deepEqual(bytes(new ProtoWriter().varint(1, 2 ** 35 + 1)), [0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x01]);
});

test("a string field is tag, length, UTF-8 bytes (the guide's 12 07 'testing')", (t) => {
  t.deepEqual(bytes(new ProtoWriter().string(2, "testing")), [0x12, 0x07, ...Buffer.from("testing")]);
});

test("a float field is fixed32 little-endian", (t) => {
  // 1.5f = 0x3FC00000
  t.deepEqual(bytes(new ProtoWriter().float(2, 1.5)), [0x15, 0x00, 0x00, 0xc0, 0x3f]);
});

test("a nested message is length-delimited (the guide's 1a 03 08 96 01)", (t) => {
  t.deepEqual(bytes(new ProtoWriter().message(3, new ProtoWriter().varint(1, 150))), [0x1a, 0x03, 0x08, 0x96, 0x01]);
});

test("packed repeated varints share one length prefix (the guide's 22 06 03 8e 02 9e a7 05)", (t) => {
  t.deepEqual(bytes(new ProtoWriter().packedVarints(4, [3, 270, 86942])), [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
});

test("packed floats are 4 bytes each", (t) => {
  t.deepEqual(bytes(new ProtoWriter().packedFloats(7, [1.5, -2])), [0x3a, 0x08, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]);
});

test("empty packed fields are omitted", (t) => {
  t.deepEqual(bytes(new ProtoWriter().packedVarints(1, []).packedFloats(2, [])), []);
});

test("large byte fields are referenced, not copied", (t) => {
  const payload = new Uint8Array(4096).fill(7);
  const writer = new ProtoWriter().bytes(9, payload);
  const chunks = writer.chunks();
  t.true(chunks.includes(payload));
  t.is(writer.byteLength, 1 + 2 + 4096);
});

test("non-integer varints are refused", (t) => {
  t.throws(() => new ProtoWriter().varint(1, 1.5), { instanceOf: RangeError, message: /integer/ });
});
