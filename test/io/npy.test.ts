import test from "ava";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { encodeNpy, parseNpy, readNpy, writeNpy } from "../../lib/io/npy.js";
import { type DType, type NdArray, ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, fixturesRoot, temporaryDirectory } from "../support/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function npyFixtures(dir = fixturesRoot): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return npyFixtures(path);
    return name.endsWith(".npy") ? [path] : [];
  });
}

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

/** A .npy file with a header dict written by hand (format `major`.0), for the cases our writer never makes. */
function handMadeNpy(dict: string, data: Uint8Array, major = 1): Buffer {
  const preamble = major === 1 ? 10 : 12;
  const encoded = Buffer.from(`${dict}\n`, major === 3 ? "utf8" : "latin1");
  const header = Buffer.alloc(preamble);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(header);
  if (major === 1) header.writeUInt16LE(encoded.length, 8);
  else header.writeUInt32LE(encoded.length, 8);
  return Buffer.concat([header, encoded, data]);
}

function bytesOfTyped(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

test("writing back every .npy fixture numpy wrote gives the same bytes", (t) => {
  const files = npyFixtures();
  t.true(files.length >= 17, `found ${files.length} .npy fixtures`);
  const dir = tempDir(t);
  for (const file of files) {
    const array = readNpy(file, { halfPrecision: "raw" });
    const copy = join(dir, "copy.npy");
    writeNpy(copy, array);
    t.true(readFileSync(copy).equals(readFileSync(file)), relative(fixturesRoot, file));
  }
});

test("reads the fixtures with the dtypes and shapes the README states", (t) => {
  const input = readNpy(fixture("dav1", "input.npy"));
  t.is(input.dtype, "uint8");
  t.is(input.shape.length, 3);
  t.is(input.shape[2], 3);
  const preprocessed = readNpy(fixture("dav1", "preprocessed.npy"));
  t.is(preprocessed.dtype, "float32");
  t.deepEqual(preprocessed.shape, [1, 3, 420, 742]);
  const depth = readNpy(fixture("utils", "depth_f32.npy"));
  t.deepEqual(depth.shape, [270, 480]);
  // The README lists exact values the fixture includes.
  const values = new Set(depth.data as Float32Array);
  for (const value of [0, 0.01, 0.02, 0.2, 0.25, 1.0]) t.true(values.has(Math.fround(value)), String(value));
});

const EVERY_DTYPE: [DType, ArrayLike<number | bigint>][] = [
  ["bool", [0, 1, 1, 0, 1, 0]],
  ["uint8", [0, 1, 127, 128, 254, 255]],
  ["int8", [-128, -1, 0, 1, 126, 127]],
  ["uint16", [0, 1, 256, 32768, 65534, 65535]],
  ["int16", [-32768, -1, 0, 1, 256, 32767]],
  ["uint32", [0, 1, 65536, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1]],
  ["int32", [-(2 ** 31), -1, 0, 1, 65536, 2 ** 31 - 1]],
  ["uint64", [0n, 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]],
  ["int64", [-(2n ** 63n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n]],
  ["float16", [0, -0, 1, -2, 65504, 2 ** -24]],
  ["float32", [0, -1.5, 3.4028234663852886e38, 1.401298464324817e-45, Infinity, NaN]],
  ["float64", [0, -1.5, Number.MAX_VALUE, Number.MIN_VALUE, -Infinity, Math.PI]],
];

function typedArrayFor(dtype: DType, values: ArrayLike<number | bigint>): NdArray["data"] {
  const constructors = {
    bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array,
    int32: Int32Array, uint64: BigUint64Array, int64: BigInt64Array, float16: Float32Array, float32: Float32Array,
    float64: Float64Array,
  } as Record<string, new (values: ArrayLike<number | bigint>) => NdArray["data"]>;
  return new constructors[dtype](values as never);
}

test("round-trips every dtype, with the descr numpy uses", (t) => {
  const dir = tempDir(t);
  const descr: Record<string, string> = {
    bool: "|b1", uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4",
    uint64: "<u8", int64: "<i8", float16: "<f2", float32: "<f4", float64: "<f8",
  };
  for (const [dtype, values] of EVERY_DTYPE) {
    const array = ndarray(typedArrayFor(dtype, values), [2, 3], dtype);
    const path = join(dir, `${dtype}.npy`);
    writeNpy(path, array);
    const bytes = readFileSync(path);
    t.is((bytes.readUInt16LE(8) + 10) % 64, 0, `${dtype}: data aligned to 64 like numpy`);
    t.true(bytes.toString("latin1", 10, 80).startsWith(`{'descr': '${descr[dtype]}', 'fortran_order': False, 'shape': (2, 3), }`), dtype);
    const back = readNpy(path);
    t.is(back.dtype, dtype);
    t.deepEqual(back.shape, [2, 3]);
    t.deepEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(array.data as ArrayLike<unknown>), dtype);
  }
});

test("scalars, empty arrays and 1-D arrays keep numpy's shape spelling", (t) => {
  for (const [shape, spelled] of [[[], "()"], [[0], "(0,)"], [[5], "(5,)"], [[2, 0, 3], "(2, 0, 3)"]] as const) {
    const array = ndarray(new Float64Array(shape.reduce((a: number, b: number) => a * b, 1)), shape);
    const bytes = concat(encodeNpy(array));
    t.true(bytes.toString("latin1").includes(`'shape': ${spelled}, }`), spelled);
    t.deepEqual(readNpy(bytes).shape, [...shape]);
  }
});

test("float16 decodes to exact float32 values by default and to raw bits on request", (t) => {
  const bits = new Uint16Array([0x3c00, 0x3555, 0xc000, 0x7c00, 0x0001]);
  const bytes = handMadeNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }", bytesOfTyped(bits));
  const decoded = readNpy(bytes);
  t.is(decoded.dtype, "float16");
  t.true(decoded.data instanceof Float32Array);
  t.deepEqual(Array.from(decoded.data as Float32Array), [1, 0.333251953125, -2, Infinity, 2 ** -24]);
  const raw = readNpy(bytes, { halfPrecision: "raw" });
  t.is(raw.dtype, "float16");
  t.true(raw.data instanceof Uint16Array);
  t.deepEqual(Array.from(raw.data as Uint16Array), Array.from(bits));
});

test("aligned little-endian data is a view of the input bytes; misaligned data is copied and still right", (t) => {
  const values = new Float32Array([1.5, -2.25, 3.125]);
  const file = concat(encodeNpy(ndarray(values, [3])));
  const aligned = readNpy(file);
  t.is(aligned.data.buffer, file.buffer);
  // A view that starts one byte later puts the data at an odd offset.
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  const misaligned = readNpy(shifted.subarray(1));
  t.not(misaligned.data.buffer, shifted.buffer);
  t.deepEqual(Array.from(misaligned.data as Float32Array), [1.5, -2.25, 3.125]);
});

test("honours byteOffset of bytes living in Node's shared buffer pool", (t) => {
  const file = concat(encodeNpy(ndarray(new Int16Array([7, -8, 9]), [3])));
  const pooled = Buffer.from(file); // small Buffers are slices of one shared pool
  t.true(pooled.buffer.byteLength > pooled.length);
  t.deepEqual(Array.from(readNpy(pooled).data as Int16Array), [7, -8, 9]);
});

test("reads Fortran-order arrays into C order", (t) => {
  const shape = [2, 3, 4];
  const fortran = new Int32Array(24);
  // Element [i, j, k] = 100i + 10j + k, stored with the first axis varying fastest.
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) fortran[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
  const bytes = handMadeNpy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", bytesOfTyped(fortran));
  const array = readNpy(bytes);
  t.deepEqual(array.shape, shape);
  const expected: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(100 * i + 10 * j + k);
  t.deepEqual(Array.from(array.data as Int32Array), expected);
});

test("reads big-endian, native ('=') and not-applicable ('|') byte orders", (t) => {
  const big = Buffer.alloc(8 * 3);
  [1.5, -1e300, 42].forEach((value, i) => big.writeDoubleBE(value, 8 * i));
  t.deepEqual(Array.from(readNpy(handMadeNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", big)).data as Float64Array), [1.5, -1e300, 42]);
  const bigU16 = Buffer.from([0x12, 0x34, 0xab, 0xcd]);
  t.deepEqual(Array.from(readNpy(handMadeNpy("{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }", bigU16)).data as Uint16Array), [0x1234, 0xabcd]);
  const bigHalf = Buffer.from([0x3c, 0x00]);
  t.deepEqual(Array.from(readNpy(handMadeNpy("{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }", bigHalf)).data as Float32Array), [1]);
  const native = readNpy(handMadeNpy("{'descr': '=i2', 'fortran_order': False, 'shape': (1,), }", Buffer.from([0xfe, 0xff])));
  t.deepEqual(Array.from(native.data as Int16Array), [-2]);
  const bytes = readNpy(handMadeNpy("{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", Buffer.from([0xff, 0x01])));
  t.deepEqual(Array.from(bytes.data as Int8Array), [-1, 1]);
});

test("reads format versions 2.0 and 3.0 (4-byte header length, utf-8 header)", (t) => {
  const data = bytesOfTyped(new Uint8Array([1, 2, 3, 4]));
  for (const major of [2, 3]) {
    const array = readNpy(handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", data, major));
    t.deepEqual(array.shape, [2, 2]);
    t.deepEqual(Array.from(array.data as Uint8Array), [1, 2, 3, 4]);
  }
});

test("NumPy's limits: more than 64 dimensions is refused on write and read, a header over 10000 characters on read", (t) => {
  t.throws(() => encodeNpy(ndarray(new Uint8Array([5]), new Array<number>(65).fill(1))), {
    instanceOf: InputError,
    message: /it has 65 dimensions and NumPy arrays have at most 64/,
  });
  const wide = handMadeNpy(`{'descr': '|u1', 'fortran_order': False, 'shape': (${"1, ".repeat(65)}), }`, new Uint8Array([5]));
  headerError(t, wide, /has 65 dimensions; NumPy arrays have at most 64/);
  const padded = handMadeNpy(`{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }${" ".repeat(10_000)}`, new Uint8Array([5]), 2);
  headerError(t, padded, /the \.npy header is longer than NumPy's limit of 10000 characters/);
  const rank64 = ndarray(new Uint8Array([5]), new Array<number>(64).fill(1));
  t.deepEqual(readNpy(concat(encodeNpy(rank64))).shape, rank64.shape);
});

test("a header claiming gigabytes, or nested 100000 deep, is refused at once without a stack overflow", (t) => {
  const claiming = Buffer.alloc(64);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(claiming);
  claiming.writeUInt32LE(0xfffffff0, 8);
  headerError(t, claiming, /longer than NumPy's limit of 10000 characters/);
  const deep = handMadeNpy(`{'descr': ${"[".repeat(100_000)}${"]".repeat(100_000)}, 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(1), 2);
  headerError(t, deep, /longer than NumPy's limit/);
  const nested = handMadeNpy(`{'descr': ${"(".repeat(4000)}${")".repeat(4000)}, 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(1));
  headerError(t, nested, /literals nested more than 32 deep/);
});

test("a dimension that is a float, negative or too large is refused by name", (t) => {
  const data = new Uint8Array(4);
  headerError(t, handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (4.0,), }", data), /dimension 4\.0 in shape \(4\.0,\) is not an integer/);
  headerError(t, handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2e0), }", data), /dimension 2e0 in shape \(2, 2e0\) is not an integer/);
  headerError(t, handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (-4,), }", data), /negative dimension -4 in shape \(-4,\)/);
  headerError(t, handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }", data), /dimension 99999999999999999999 .* is too large/);
  headerError(t, handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': [4], }", data), /expected a tuple of integers for 'shape' but found \[4\]/);
  t.deepEqual(readNpy(handMadeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (4L,), }", data)).shape, [4]); // Python 2's long
});

test("data at an odd offset of a Node Buffer (a view, whose slice() is a view too) is copied, not a RangeError", (t) => {
  const values = new Float64Array([1.5, -2.25, 1e300]);
  const file = concat(encodeNpy(ndarray(values, [3])));
  for (const shift of [1, 2, 3, 5, 7]) {
    const holder = Buffer.alloc(file.length + shift);
    file.copy(holder, shift);
    const array = readNpy(holder.subarray(shift));
    t.deepEqual(Array.from(array.data as Float64Array), [1.5, -2.25, 1e300]);
    t.is(array.data.byteOffset % 8, 0);
  }
});

test("encodeNpy hands out the array's own memory as the data part", (t) => {
  const data = new Float64Array([1, 2, 3]);
  const [header, body] = encodeNpy(ndarray(data, [3]));
  t.is(body.buffer, data.buffer);
  t.is(header.length % 64, 0);
});

function headerError(t: import("ava").ExecutionContext, bytes: Uint8Array, message: RegExp): void {
  const error = t.throws(() => parseNpy(bytes, { file: "bad.npz", key: "depth" }), { instanceOf: FileFormatError });
  t.is(error.code, "ERR_ENDOSYNTH_FILE_FORMAT");
  t.is(error.file, "bad.npz");
  t.is(error.key, "depth");
  t.regex(error.message, /^bad\.npz, member depth: /);
  t.regex(error.message, message);
}

test("truncated data: FileFormatError naming file and key with expected and actual bytes", (t) => {
  const file = readFileSync(fixture("utils", "depth_f32.npy"));
  headerError(t, file.subarray(0, file.length - 1), /truncated \.npy data: shape \(270, 480\) of float32 needs 518400 bytes but 518399 follow the header/);
  headerError(t, file.subarray(0, 60), /truncated \.npy file: the header needs 128 bytes but the file has 60/);
  headerError(t, file.subarray(0, 4), /not a \.npy file: 4 bytes, too short/);
});

test("data longer than the shape says: FileFormatError with expected and actual bytes", (t) => {
  const file = Buffer.concat([readFileSync(fixture("utils", "depth_f32.npy")), Buffer.alloc(4)]);
  headerError(t, file, /corrupt \.npy data: shape \(270, 480\) of float32 needs 518400 bytes but 518404 follow the header/);
});

test("a shape that does not match the data: FileFormatError", (t) => {
  const file = Buffer.from(readFileSync(fixture("utils", "depth_f32.npy")));
  const at = file.indexOf("(270, 480)");
  file.write("(271, 480)", at, "latin1");
  headerError(t, file, /shape \(271, 480\) of float32 needs 520320 bytes but 518400 follow the header/);
});

test("a wrong magic or an unknown version: FileFormatError", (t) => {
  const file = Buffer.from(readFileSync(fixture("utils", "depth_f32.npy")));
  const badMagic = Buffer.from(file);
  badMagic.write("PK", 0, "latin1");
  headerError(t, badMagic, /expected the magic "\\x93NUMPY" but found/);
  const version = Buffer.from(file);
  version[6] = 4;
  headerError(t, version, /unsupported \.npy format version 4\.0/);
});

test("unknown dtypes (complex, object, strings, structured) are refused by name", (t) => {
  const data = new Uint8Array(16);
  headerError(t, handMadeNpy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", data), /unsupported dtype "<c8" \(complex64\)/);
  headerError(t, handMadeNpy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data), /unsupported dtype "\|O" \(object/);
  headerError(t, handMadeNpy("{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }", data), /unsupported dtype "<U2" \(str\)/);
  headerError(t, handMadeNpy("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", data), /structured arrays/);
});

test("a garbled header dict: FileFormatError quoting it", (t) => {
  const data = new Uint8Array(4);
  headerError(t, handMadeNpy("{'descr': '<f4' 'fortran_order': False}", data), /corrupt \.npy header \(expected "," or "}"/);
  headerError(t, handMadeNpy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", data), /expected True or False for 'fortran_order'/);
  headerError(t, handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': 1, }", data), /expected a tuple of integers for 'shape' but found 1/);
  headerError(t, handMadeNpy("{'descr': '<f4', 'fortran_order': False, }", data), /missing key 'shape': a header has exactly 'descr', 'fortran_order' and 'shape'/);
  headerError(t, handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", data), /unexpected key 'extra'/);
  headerError(t, handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } trailing", data), /unexpected text after the header dict/);
});

test("a missing file or a folder: FileFormatError naming the file and why", (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "missing.npy");
  const error = t.throws(() => readNpy(missing), { instanceOf: FileFormatError });
  t.is(error.file, missing);
  t.is(error.message, `${missing}: cannot read the file: no such file`);
  t.throws(() => readNpy(dir), { instanceOf: FileFormatError, message: `${dir}: cannot read the file: it is a folder, not a file` });
});

test("writing an invalid array or a dtype numpy lacks: InputError, and no file", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "x.npy");
  const bad = t.throws(() => writeNpy(path, { data: new Float32Array(3), shape: [2, 2], dtype: "float32" }), { instanceOf: InputError });
  t.regex(bad.message, /array\.data has 3 elements but its shape \[2, 2\] needs 4/);
  const bfloat = t.throws(() => writeNpy(path, ndarray(new Float32Array(1), [1], "bfloat16")), { instanceOf: InputError });
  t.regex(bfloat.message, /Cannot write dtype bfloat16 of array to \.npy/);
  t.deepEqual(readdirSync(dir), []);
});

test("bad arguments: InputError", (t) => {
  t.throws(() => readNpy(42 as never), { instanceOf: InputError, message: /Expected a path or a Uint8Array for input but received 42/ });
  t.throws(() => readNpy(new Uint8Array(0), { halfPrecision: "half" as never }), { instanceOf: InputError, message: /options\.halfPrecision/ });
});

test("writeNpy into a missing folder or onto a folder: InputError naming the file", (t) => {
  const dir = tempDir(t);
  const array = ndarray(new Float32Array(2), [2]);
  const missing = join(dir, "no", "depth.npy");
  const error = t.throws(() => writeNpy(missing, array), { instanceOf: InputError, message: `Cannot write ${missing}: its folder does not exist` });
  t.is(error.file, missing);
  mkdirSync(join(dir, "depth.npy"));
  t.throws(() => writeNpy(join(dir, "depth.npy"), array), { instanceOf: InputError, message: /depth\.npy: it is a folder$/ });
});
