import test from "ava";
import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStateDict } from "../../lib/checkpoint/state_dict.js";
import { CheckpointError } from "../../lib/errors.js";
import { temporaryDirectory } from "../support/fixtures.js";

interface Entry {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * A safetensors file spelled out from the format's specification: u64 little-endian header size,
 * the JSON header (`data_offsets` relative to the data section), then the data. `pad` spaces are
 * appended to the JSON (the format allows trailing whitespace; writers use it to align the data).
 */
function safetensorsFile(entries: Record<string, Entry>, metadata: Record<string, string> | undefined, pad: number): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, entry] of Object.entries(entries)) {
    header[name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.bytes.length] };
    offset += entry.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header) + " ".repeat(pad), "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Uint8Array.from(Buffer.concat([length, json, ...Object.values(entries).map((entry) => entry.bytes)]));
}

function le(kind: "f32" | "f64" | "i64" | "i32" | "u16", values: number[]): Uint8Array {
  const size = { f32: 4, f64: 8, i64: 8, i32: 4, u16: 2 }[kind];
  const buffer = Buffer.alloc(values.length * size);
  values.forEach((value, i) => {
    if (kind === "f32") buffer.writeFloatLE(value, i * size);
    else if (kind === "f64") buffer.writeDoubleLE(value, i * size);
    else if (kind === "i64") buffer.writeBigInt64LE(BigInt(value), i * size);
    else if (kind === "i32") buffer.writeInt32LE(value, i * size);
    else buffer.writeUInt16LE(value, i * size);
  });
  return Uint8Array.from(buffer);
}

const ENTRIES: Record<string, Entry> = {
  "module.weight": { dtype: "F32", shape: [2, 2], bytes: le("f32", [1.5, -2, 0.25, 8]) },
  "module.double": { dtype: "F64", shape: [1], bytes: le("f64", [Math.E]) },
  "module.steps": { dtype: "I64", shape: [2], bytes: le("i64", [-3, 4]) },
  "module.ids": { dtype: "I32", shape: [1, 1], bytes: le("i32", [-7]) },
  "module.half": { dtype: "F16", shape: [2], bytes: le("u16", [0x3c00, 0xc100]) }, // 1, -2.5
  "module.brain": { dtype: "BF16", shape: [1], bytes: le("u16", [0x4049]) }, // 3.140625
  "module.mask": { dtype: "BOOL", shape: [3], bytes: Uint8Array.from([1, 0, 1]) },
};

function write(t: { teardown: (fn: () => void) => void }, bytes: Uint8Array): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const path = join(dir.path, "weights.bin"); // content decides the format, not the extension
  writeFileSync(path, bytes);
  return path;
}

function jsonLength(entries: Record<string, Entry>, metadata?: Record<string, string>): number {
  return safetensorsFile(entries, metadata, 0).length - 8 - Object.values(entries).reduce((n, e) => n + e.bytes.length, 0);
}

test("reads a hand-made safetensors file: every tensor, metadata, module. prefix stripped", async (t) => {
  const metadata = { format: "pt", note: "hand made" };
  // pad the JSON so the data section starts at a multiple of 8; entries are ordered by element
  // size, as writers do, so every tensor is aligned and can be a view
  const pad = (8 - (jsonLength(ENTRIES, metadata) % 8)) % 8;
  const path = write(t, safetensorsFile(ENTRIES, metadata, pad));
  const { stateDict, info } = await readStateDict(path);
  t.like(info, { format: "safetensors", strippedPrefix: "module.", byteOrder: "little", tensors: 7, parameters: 4 + 1 + 2 + 2 + 1 + 3 + 1 });
  t.deepEqual(info.metadata, metadata);
  t.deepEqual([...stateDict.keys()], ["weight", "double", "steps", "ids", "half", "brain", "mask"]);
  t.deepEqual(stateDict.get("weight"), { data: Float32Array.from([1.5, -2, 0.25, 8]), shape: [2, 2], dtype: "float32" });
  t.deepEqual(Array.from(stateDict.get("double")!.data as Float64Array), [Math.E]);
  t.deepEqual(Array.from(stateDict.get("steps")!.data as BigInt64Array), [-3n, 4n]);
  t.deepEqual(stateDict.get("half"), { data: Float32Array.from([1, -2.5]), shape: [2], dtype: "float16" });
  t.deepEqual(stateDict.get("brain"), { data: Float32Array.from([3.140625]), shape: [1], dtype: "bfloat16" });
  t.deepEqual(stateDict.get("mask"), { data: Uint8Array.from([1, 0, 1]), shape: [3], dtype: "bool" });
  t.deepEqual(stateDict.get("ids"), { data: Int32Array.from([-7]), shape: [1, 1], dtype: "int32" });
  t.is(info.copiedTensors, 2); // only the decoded halves
  t.is(stateDict.get("weight")!.data.buffer.byteLength, info.bytes);
});

test("reads a safetensors file whose data section is not aligned (by copying)", async (t) => {
  const pad = ((8 - (jsonLength(ENTRIES) % 8)) % 8) + 1; // one byte past alignment
  const path = write(t, safetensorsFile(ENTRIES, undefined, pad));
  const { stateDict, info } = await readStateDict(path, { halfPrecision: "raw" });
  t.deepEqual(Array.from(stateDict.get("weight")!.data as Float32Array), [1.5, -2, 0.25, 8]);
  t.deepEqual(Array.from(stateDict.get("half")!.data as Uint16Array), [0x3c00, 0xc100]);
  t.deepEqual(info.metadata, {});
  t.is(info.copiedTensors, 6); // all but the one-byte bools
});

const BAD_HEADERS: [string, Record<string, Entry>, RegExp][] = [
  ["an unsupported dtype", { w: { dtype: "F8_E4M3", shape: [1], bytes: Uint8Array.from([1]) } }, /tensor 'w': unsupported dtype "F8_E4M3"/],
  ["data_offsets that do not match the shape", { w: { dtype: "F32", shape: [3], bytes: le("f32", [1, 2]) } }, /tensor 'w': data_offsets \[0, 8\] span 8 bytes but float32 \[3\] needs 12/],
];

for (const [what, entries, message] of BAD_HEADERS) {
  test(`a safetensors header with ${what} is refused, naming the tensor`, async (t) => {
    const path = write(t, safetensorsFile(entries, undefined, 0));
    const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError, message });
    t.is(error.code, "ERR_ENDOSYNTH_CHECKPOINT");
    t.is(error.file, path);
    t.is(error.key, "w");
  });
}

test("a truncated safetensors file is refused, naming the tensor whose data is cut", async (t) => {
  const whole = safetensorsFile(ENTRIES, undefined, 0);
  const path = write(t, whole.subarray(0, whole.length - 2));
  const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError });
  t.is(error.key, "module.mask"); // the last tensor in the file
  t.regex(error.message, /data_offsets end at byte \d+ but the data section holds only \d+ bytes \(truncated file\?\)/);
});

test("a safetensors header that is not valid JSON is refused", async (t) => {
  const json = Buffer.from('{"w": {"dtype": "F32",', "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const path = write(t, Uint8Array.from(Buffer.concat([length, json])));
  const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError });
  t.regex(error.message, /the JSON header is not valid JSON/);
  t.is(error.file, path);
});

/** A safetensors file from a header written as text, so tests can spell what JSON.stringify never would. */
function fromHeaderText(json: string, data: Uint8Array): Uint8Array {
  const text = Buffer.from(json, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  return Uint8Array.from(Buffer.concat([length, text, data]));
}

test("overlapping tensors, gaps and bytes past the last tensor are refused, as the reference implementation does", async (t) => {
  const data = le("f32", [1, 2, 3, 4]);
  const overlap = fromHeaderText('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data);
  const error = await t.throwsAsync(readStateDict(write(t, overlap)), { instanceOf: CheckpointError, message: /tensor 'b': data_offsets \[0, 16\] overlap the tensor before it \(which ends at 16\)/ });
  t.is(error.key, "b");
  const gap = fromHeaderText('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', data);
  await t.throwsAsync(readStateDict(write(t, gap)), { instanceOf: CheckpointError, message: /tensor 'b': data_offsets \[8, 12\] leave a gap after byte 4/ });
  const tail = fromHeaderText('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data);
  await t.throwsAsync(readStateDict(write(t, tail)), { instanceOf: CheckpointError, message: /the tensors cover 8 bytes of data but 16 follow the header/ });
});

test("a 4.0 in a shape or offsets is refused, not read as 4; numbers inside strings are left alone", async (t) => {
  const data = le("f32", [1, 2, 3, 4]);
  const floats = fromHeaderText('{"a":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}', data);
  await t.throwsAsync(readStateDict(write(t, floats)), {
    instanceOf: CheckpointError,
    message: /the JSON header holds the number 4\.0 where only non-negative integers belong/,
  });
  const exponent = fromHeaderText('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1.6e1]}}', data);
  await t.throwsAsync(readStateDict(write(t, exponent)), { instanceOf: CheckpointError, message: /the number 1\.6e1/ });
  const quoted = fromHeaderText('{"__metadata__":{"lr":"1.5e-4","note":"a \\" 2.5"},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data);
  const { info } = await readStateDict(write(t, quoted));
  t.deepEqual(info.metadata, { lr: "1.5e-4", note: 'a " 2.5' });
});

test("a header length beyond the format's 100 MB limit is refused without reading it", async (t) => {
  const bytes = Buffer.alloc(200);
  bytes.writeBigUInt64LE(150_000_000n);
  bytes[8] = 0x7b;
  // isSafetensors needs the claimed header to fit in the file, so claim it in a file that big: sparse.
  const path = write(t, bytes);
  truncateSync(path, 150_000_100);
  await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError, message: /its header claims 150000000 bytes, more than the 100000000 the format allows/ });
});
