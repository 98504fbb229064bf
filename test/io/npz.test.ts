import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { readNpz, writeNpz } from "../../lib/io/npz.js";
import { openZip, readZipEntry } from "../../lib/io/zip.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../helpers/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
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
