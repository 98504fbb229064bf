import test from "ava";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../lib/errors.js";
import { writePly } from "../../lib/io/ply.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { temporaryDirectory } from "../support/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

/** Splits a PLY file into its header lines and the bytes after `end_header\n`. */
function parsePly(bytes: Buffer): { lines: string[]; body: Buffer } {
  const end = bytes.indexOf("end_header\n") + "end_header\n".length;
  return { lines: bytes.subarray(0, end).toString("ascii").trim().split("\n"), body: bytes.subarray(end) };
}

const POINTS = ndarray<"float32">(new Float32Array([0.1, -0.2, 0.3, 1.5, 2.5, -3.5]), [2, 3]);

test("writes x y z as little-endian floats after a binary_little_endian header", (t) => {
  const path = join(tempDir(t), "cloud.ply");
  writePly(path, POINTS);
  const { lines, body } = parsePly(readFileSync(path));
  t.deepEqual(lines, [
    "ply",
    "format binary_little_endian 1.0",
    "comment written by endosynth",
    "element vertex 2",
    "property float x",
    "property float y",
    "property float z",
    "end_header",
  ]);
  t.is(body.length, 2 * 12);
  const values = Array.from({ length: 6 }, (_, i) => body.readFloatLE(4 * i));
  t.deepEqual(values, [...POINTS.data]);
});

test("writes colours as uchar red green blue after each point", (t) => {
  const path = join(tempDir(t), "coloured.ply");
  writePly(path, POINTS, ndarray<"uint8">(new Uint8Array([255, 0, 10, 1, 2, 3]), [2, 3]));
  const { lines, body } = parsePly(readFileSync(path));
  t.deepEqual(lines.slice(7, 10), ["property uchar red", "property uchar green", "property uchar blue"]);
  t.is(body.length, 2 * 15);
  t.deepEqual([body.readFloatLE(15), body.readFloatLE(19), body.readFloatLE(23)], [1.5, 2.5, -3.5]);
  t.deepEqual([...body.subarray(12, 15)], [255, 0, 10]);
  t.deepEqual([...body.subarray(27, 30)], [1, 2, 3]);
});

test("an empty cloud is a valid file with zero vertices", (t) => {
  const path = join(tempDir(t), "empty.ply");
  writePly(path, ndarray<"float32">(new Float32Array(0), [0, 3]));
  const { lines, body } = parsePly(readFileSync(path));
  t.true(lines.includes("element vertex 0"));
  t.is(body.length, 0);
});

test("colours for another number of points are refused and the previous file is kept", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "cloud.ply");
  writeFileSync(path, "previous");
  const error = t.throws(() => writePly(path, POINTS, ndarray<"uint8">(new Uint8Array(9), [3, 3])), { instanceOf: InputError });
  t.is(error.message, "Expected colors of shape (2, 3), one per point, but received (3, 3)");
  t.throws(() => writePly(path, ndarray<"float32">(new Float32Array(4), [2, 2])), { instanceOf: InputError, message: /Expected shape \[N, 3\] for points but received \[2, 2\]/ });
  t.is(readFileSync(path, "utf8"), "previous");
  t.deepEqual(readdirSync(dir), ["cloud.ply"]);
});

test("a missing folder or a folder at the path: InputError naming the file, not a bare ENOENT", (t) => {
  const dir = tempDir(t);
  const points = ndarray<"float32">(new Float32Array(3), [1, 3]);
  const missing = join(dir, "missing", "cloud.ply");
  const error = t.throws(() => writePly(missing, points), { instanceOf: InputError, message: `Cannot write ${missing}: its folder does not exist` });
  t.is(error.file, missing);
  mkdirSync(join(dir, "cloud.ply"));
  t.throws(() => writePly(join(dir, "cloud.ply"), points), { instanceOf: InputError, message: /cloud\.ply: it is a folder$/ });
});
