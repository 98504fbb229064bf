import test from "ava";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { DisposedError, InputError } from "../../lib/errors.js";
import { readNpz } from "../../lib/io/npz.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { crc32Combine, DepthStackWriter, writeDepthPng16, writeDepthTiff } from "../../lib/video/depth_files.js";
import { testFolder } from "../support/fixtures.js";
import { decodeGrey16Png } from "./png16.js";

/** A depth map with edge cases: 0, negative, NaN, +inf, beyond 65.535 m, and a smooth ramp. */
function depthMap(width = 9, height = 4, offset = 0): NdArray<"float32"> {
  const data = Float32Array.from({ length: width * height }, (_, i) => 0.0125 * i + 0.02 + offset);
  data.set([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 70, 0.0004, 0.0005], 0);
  return ndarray<"float32">(data, [height, width]);
}

test("16-bit PNG: millimetres by default, 0 where there is no depth, clipped at 65535; sharp reads it as grey16", async (t) => {
  const dir = testFolder(t);
  const depth = depthMap();
  const path = join(dir, "depth.png");
  writeDepthPng16(path, depth);
  const png = decodeGrey16Png(readFileSync(path));
  t.deepEqual([png.width, png.height], [9, 4]);
  t.deepEqual([...png.values.subarray(0, 7)], [0, 0, 0, 0, 65535, 0, 1]);
  for (let i = 7; i < png.values.length; i++) t.is(png.values[i], Math.round(depth.data[i] * 1000), `pixel ${i}`);
  t.like(await sharp(path).metadata(), { format: "png", width: 9, height: 4, channels: 1, depth: "ushort" });

  writeDepthPng16(path, depth, { scale: 5000 });
  t.is(decodeGrey16Png(readFileSync(path)).values[20], Math.round(depth.data[20] * 5000));
  t.deepEqual(readdirSync(dir), ["depth.png"]);
});

test("float TIFF: the metres exactly, NaN and infinities included, as sharp decodes it", async (t) => {
  const path = join(testFolder(t), "depth.tif");
  const depth = depthMap(13, 7);
  writeDepthTiff(path, depth);
  const image = sharp(path);
  t.like(await image.metadata(), { format: "tiff", width: 13, height: 7, channels: 1, depth: "float" });
  const { data } = await image.extractChannel(0).raw({ depth: "float" }).toBuffer({ resolveWithObject: true });
  t.deepEqual(new Float32Array(data.buffer, data.byteOffset, 13 * 7), depth.data);
});

test("an .npz stack streams frames to disk and reads back as depth [N, H, W], pts and frame numbers, CRC-checked", (t) => {
  const dir = testFolder(t);
  const path = join(dir, "stack.npz");
  const stack = new DepthStackWriter(path);
  const frames = [0, 1, 2, 3].map((k) => depthMap(9, 4, k));
  frames.forEach((frame, k) => stack.add(frame, { pts: 0.04 * k + 10, frameNumber: 3 * k }));
  t.is(stack.frames, 4);
  t.deepEqual(readdirSync(dir).filter((name) => name === "stack.npz"), []);
  stack.close();
  t.deepEqual(readdirSync(dir), ["stack.npz"]);
  const arrays = readNpz(path);
  t.deepEqual(Object.keys(arrays).sort(), ["depth", "frame_number", "pts"]);
  t.deepEqual(arrays.depth.shape, [4, 4, 9]);
  t.deepEqual(arrays.depth.data, Float32Array.from(frames.flatMap((frame) => [...frame.data])));
  t.deepEqual([...(arrays.pts.data as Float64Array)], [0, 1, 2, 3].map((k) => 0.04 * k + 10));
  t.deepEqual([...(arrays.frame_number.data as BigInt64Array)], [0n, 3n, 6n, 9n]);
  t.throws(() => stack.add(frames[0]), { instanceOf: DisposedError });
});

test("an empty stack is a valid archive of zero frames; aborting leaves no file", (t) => {
  const dir = testFolder(t);
  const empty = new DepthStackWriter(join(dir, "empty.npz"));
  empty.close();
  const arrays = readNpz(join(dir, "empty.npz"));
  t.deepEqual([arrays.depth.shape, arrays.pts.shape, arrays.frame_number.shape], [[0, 0, 0], [0], [0]]);
  const aborted = new DepthStackWriter(join(dir, "aborted.npz"));
  aborted.add(depthMap());
  aborted.abort();
  aborted.abort();
  t.deepEqual(readdirSync(dir), ["empty.npz"]);
});

test("frames of another size, dtype or rank are refused with the file and frame named", (t) => {
  const dir = testFolder(t);
  const stack = new DepthStackWriter(join(dir, "stack.npz"));
  t.teardown(() => stack.abort());
  stack.add(depthMap(9, 4));
  t.throws(() => stack.add(depthMap(8, 4)), { instanceOf: InputError, message: /Expected every depth map of .*stack\.npz to be 4x9 like the first, but frame 1 is 4x8/ });
  t.throws(() => stack.add(ndarray<"uint8">(new Uint8Array(36), [4, 9]) as never), { instanceOf: InputError, message: /dtype float32/ });
  t.throws(() => writeDepthPng16(join(dir, "x.png"), depthMap(), { scale: 0 }), { instanceOf: InputError, message: "Expected a positive number of units per metre for options.scale but received 0" });
  t.throws(() => writeDepthTiff(join(dir, "x.tif"), ndarray<"float32">(new Float32Array(8), [2, 2, 2])), { instanceOf: InputError });
});

test("crc32Combine gives the CRC-32 of a concatenation from the parts' CRCs", (t) => {
  for (const [a, b] of [[0, 0], [1, 0], [0, 1], [7, 1], [1000, 777], [3, 65536 + 5]]) {
    const first = randomBytes(a);
    const second = randomBytes(b);
    t.is(crc32Combine(crc32(first), crc32(second), b), crc32(Buffer.concat([first, second])), `${a} + ${b}`);
  }
});
