import test from "ava";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { encodeNpy } from "../../lib/io/npy.js";
import { readNpz, writeNpz } from "../../lib/io/npz.js";
import { openZip, readZipEntry } from "../../lib/io/zip_reader.js";
import { type NdArray, ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { deflatedWithZeros, handMadeZipBytes, tempDir, writeHandMadeZip } from "./helpers.js";

const data = (name: string) => join(import.meta.dirname, "data", name);

/** The arrays test/io/data/*.npz hold (see its README): element i of each, computed here. */
function expectedArrays(): Record<string, number[] | bigint[]> {
  const n = 35;
  const index = Array.from({ length: n }, (_, i) => i);
  return {
    rgb: Array.from({ length: 3 * n }, (_, i) => (i * 37 + 11) % 256),
    depth: index.map((i) => Math.fround(0.02 + (i % 97) / 256)),
    seg: index.map((i) => i % 7),
    f4: index.map((i) => i * 0.25 - 3),
    f8: index.map((i) => i * 1e-3 - 1e6),
    i8: index.map((i) => BigInt(i) * 1000003n - 2n ** 40n),
    u2: index.map((i) => i * 257),
    b: index.map((i) => (i % 3 === 0 ? 1 : 0)),
  };
}

const manifest = JSON.parse(readFileSync(fixture("utils", "manifest.json"), "utf8"));

function minMax(values: ArrayLike<number>): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return [min, max];
}

for (const name of ["sample_a", "sample_b"] as const) {
  test(`reads ${name}.npz (${manifest.samples[name].writer}) with the facts its manifest states`, (t) => {
    const facts = manifest.samples[name];
    const { rgb, depth, seg } = readNpz(fixture("utils", `${name}.npz`));
    t.is(rgb.dtype, "uint8");
    t.deepEqual(rgb.shape, [1080, 1920, 3]);
    t.is(depth.dtype, facts.depth_dtype);
    t.deepEqual(depth.shape, [1080, 1920]);
    t.deepEqual(minMax(depth.data as Float32Array), [facts.depth_min, facts.depth_max]);
    t.is(seg.dtype, "uint8");
    t.deepEqual([...new Set(seg.data as Uint8Array)].sort(), facts.seg_classes);
  });
}

test("our stored archive holds members byte-identical to numpy's, aligned so arrays are views of the file", (t) => {
  const file = fixture("utils", "sample_a.npz");
  const arrays = readNpz(file, { halfPrecision: "raw" });
  const path = join(tempDir(t), "copy.npz");
  writeNpz(path, arrays);
  const ours = openZip(readFileSync(path));
  const numpy = openZip(readFileSync(file));
  for (const member of ["rgb.npy", "depth.npy", "seg.npy"]) {
    t.true(Buffer.from(readZipEntry(ours, member)).equals(Buffer.from(readZipEntry(numpy, member))), member);
    t.is(ours.entries.get(member)!.dataOffset % 64, 0);
  }
  const bytes = readFileSync(path);
  const back = readNpz(bytes, { halfPrecision: "raw" });
  for (const key of ["rgb", "depth", "seg"]) t.is(back[key].data.buffer, bytes.buffer, key);
});

test("round-trips compressed archives like np.savez_compressed, smaller than stored", (t) => {
  const dir = tempDir(t);
  const arrays = {
    ramp: ndarray(new Float64Array(10_000).map((_, i) => i / 7), [100, 100]),
    flags: ndarray(new Uint8Array(50).fill(1), [50], "bool"),
    big: ndarray(new BigInt64Array([1n, -(2n ** 62n)]), [2]),
  };
  writeNpz(join(dir, "c.npz"), arrays, { compress: true });
  writeNpz(join(dir, "s.npz"), arrays);
  t.true(readFileSync(join(dir, "c.npz")).length < readFileSync(join(dir, "s.npz")).length);
  const archive = openZip(readFileSync(join(dir, "c.npz")));
  t.true([...archive.entries.values()].every((entry) => entry.method === 8));
  const back = readNpz(join(dir, "c.npz"));
  t.deepEqual(Object.keys(back), ["ramp", "flags", "big"]);
  for (const [key, array] of Object.entries(arrays)) {
    t.is(back[key].dtype, array.dtype);
    t.deepEqual(back[key].shape, array.shape);
    t.deepEqual(Array.from(back[key].data as ArrayLike<unknown>), Array.from(array.data as ArrayLike<unknown>), key);
  }
});

for (const name of ["savez_odd.npz", "savez_compressed_odd.npz", "savez_streamed.npz", "savez_compressed_streamed.npz"]) {
  test(`reads ${name}, written by NumPy 2.4 with members at odd offsets, with every value right`, (t) => {
    const arrays = readNpz(data(name));
    const expected = expectedArrays();
    t.deepEqual(Object.keys(arrays), Object.keys(expected));
    for (const [key, values] of Object.entries(expected)) {
      const array = arrays[key];
      t.deepEqual(array.shape, key === "rgb" ? [5, 7, 3] : [5, 7], key);
      if (key === "depth") {
        // float16 of the float64 values: compare within float16's half-ulp at 0.4 (2^-12).
        (array.data as Float32Array).forEach((value, i) => t.true(Math.abs(value - (values[i] as number)) <= 2 ** -12, `depth[${i}]`));
      } else {
        t.deepEqual(Array.from(array.data as ArrayLike<number | bigint>), values, key);
      }
      t.is(array.data.byteOffset % array.data.BYTES_PER_ELEMENT, 0, key);
    }
    t.deepEqual(readNpz(readFileSync(data(name)))["f8"].data, arrays["f8"].data);
  });
}

test("a flipped bit in a stored member's data: FileFormatError naming the member, as np.load's BadZipFile", (t) => {
  const bytes = readFileSync(data("savez_odd.npz"));
  const entry = openZip(bytes).entries.get("f8.npy")!;
  bytes[entry.dataOffset + entry.size - 3] ^= 0x04;
  const error = t.throws(() => readNpz(bytes), { instanceOf: FileFormatError });
  t.is(error.key, "f8.npy");
  t.regex(error.message, /member f8\.npy is corrupt: CRC-32 expected/);
});

/** The npy bytes of an array, as one buffer. */
function npyBytes(array: NdArray): Buffer {
  return Buffer.concat(encodeNpy(array));
}

test("a member whose .npy header needs another size than the archive declares is refused before it is inflated", (t) => {
  const small = npyBytes(ndarray(new Float32Array(10), [10]));
  const bytes = handMadeZipBytes([{ name: "depth.npy", data: small, deflate: true }]);
  // Say (100000, 100000) in the header: 40 GB that the archive's 168 bytes cannot be.
  const lying = Buffer.from(npyBytes(ndarray(new Float32Array(10), [10])));
  lying.write("(100000, 100000), }", lying.indexOf("(10,), }"), "latin1");
  const archive = handMadeZipBytes([{ name: "depth.npy", data: lying, deflate: true }]);
  const error = t.throws(() => readNpz(archive), { instanceOf: FileFormatError });
  t.is(error.key, "depth");
  t.regex(error.message, /member depth: its \.npy header needs 40000000128 bytes but the archive declares 168/);
  t.deepEqual(Array.from(readNpz(bytes)["depth"].data as Float32Array), new Array(10).fill(0));
});

test("a 1 MB npz whose member inflates to 1 GiB stops at its declared 168 bytes, in bounded memory", async (t) => {
  const header = npyBytes(ndarray(new Float32Array(10), [10]));
  const stream = await deflatedWithZeros(header, 1 << 30);
  t.true(stream.length < 1.1e6);
  // Build the archive around the hand-made stream: a stored member's bytes are the stream, then say "deflate".
  const bytes = handMadeZipBytes([{ name: "depth.npy", data: stream }]);
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  for (const at of [8, directory + 10]) bytes.writeUInt16LE(8, at); // method: deflate, local and central
  bytes.writeUInt32LE(header.length, directory + 24); // declared size: what the header needs
  const before = process.memoryUsage().rss;
  const error = t.throws(() => readNpz(bytes, {}), { instanceOf: FileFormatError });
  t.regex(error.message, /member depth\.npy inflates past its declared size of 168 bytes/);
  t.true(process.memoryUsage().rss - before < 100 << 20, `grew by ${(process.memoryUsage().rss - before) >> 20} MiB`);
});

test("an npz over 4 GiB (a sparse file) is read from disk member by member", (t) => {
  const path = join(tempDir(t), "huge.npz");
  const depth = ndarray(Float32Array.from([0.1, 0.2, 0.3]), [3]);
  writeHandMadeZip(path, [
    { name: "notes.txt", hole: 2 ** 32 + 4096 },
    { name: "depth.npy", data: npyBytes(depth) },
  ]);
  t.true(statSync(path).size > 2 ** 32);
  const arrays = readNpz(path);
  t.deepEqual(Object.keys(arrays), ["depth"]);
  t.deepEqual(arrays["depth"].data, depth.data);
});

test("a corrupt member: FileFormatError naming the file and the key", (t) => {
  const path = join(tempDir(t), "bad.npz");
  writeNpz(path, { rgb: ndarray(new Uint8Array(12), [2, 2, 3]), depth: ndarray(new Float32Array(4), [2, 2]) });
  const bytes = readFileSync(path);
  const at = bytes.indexOf("'<f4'");
  bytes.write("'<c8'", at, "latin1");
  writeFileSync(path, bytes);
  const error = t.throws(() => readNpz(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.is(error.key, "depth");
  t.regex(error.message, new RegExp(`^${path}, member depth: unsupported dtype "<c8"`));
});

test("a truncated archive: FileFormatError naming the file", (t) => {
  const file = fixture("utils", "sample_b.npz");
  const path = join(tempDir(t), "cut.npz");
  writeFileSync(path, readFileSync(file).subarray(0, 3_000_000));
  const error = t.throws(() => readNpz(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.regex(error.message, /truncated/);
});

test("writing an invalid array: InputError naming the key, and the old file survives", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "x.npz");
  writeFileSync(path, "old");
  const error = t.throws(
    () => writeNpz(path, { good: ndarray(new Uint8Array(1), [1]), bad: { data: new Uint8Array(2), shape: [3], dtype: "uint8" } }),
    { instanceOf: InputError },
  );
  t.regex(error.message, /arrays\.bad\.data has 2 elements but its shape \[3\] needs 3/);
  t.is(readFileSync(path, "utf8"), "old");
  t.deepEqual(readdirSync(dir), ["x.npz"]);
  t.throws(() => writeNpz(path, {}, { compress: "yes" } as never), { instanceOf: InputError, message: /options\.compress/ });
});
