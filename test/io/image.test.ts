import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { readImage, writeImage } from "../../lib/io/image.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../helpers/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, tail]);
}

/** A PNG built by hand (no filter, one IDAT), so the test does not depend on sharp's encoder. */
function handMadePng(width: number, height: number, bitDepth: 8 | 16, colourType: 0 | 2 | 4 | 6, samples: number[]): Buffer {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colourType];
  const bytesPerSample = bitDepth / 8;
  const rowBytes = width * channels * bytesPerSample;
  const raw = Buffer.alloc(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const value = samples[y * width * channels + i];
      const at = y * (rowBytes + 1) + 1 + i * bytesPerSample;
      if (bitDepth === 16) raw.writeUInt16BE(value, at);
      else raw[at] = value;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = bitDepth;
  header[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

test("reads an 8-bit RGB PNG into uint8 [H, W, 3] with the exact pixels", async (t) => {
  const image = await readImage(handMadePng(2, 1, 8, 2, [1, 2, 3, 250, 251, 252]));
  t.deepEqual(image.shape, [1, 2, 3]);
  t.is(image.dtype, "uint8");
  t.deepEqual([...image.data], [1, 2, 3, 250, 251, 252]);
});

test("drops alpha without blending", async (t) => {
  const image = await readImage(handMadePng(2, 1, 8, 6, [10, 20, 30, 0, 40, 50, 60, 128]));
  t.deepEqual([...image.data], [10, 20, 30, 40, 50, 60]);
});

test("turns grey and grey+alpha into RGB", async (t) => {
  t.deepEqual([...(await readImage(handMadePng(2, 1, 8, 0, [7, 200]))).data], [7, 7, 7, 200, 200, 200]);
  t.deepEqual([...(await readImage(handMadePng(1, 1, 8, 4, [9, 0]))).data], [9, 9, 9]);
});

test("scales 16-bit images to 8 bits", async (t) => {
  const image = await readImage(handMadePng(2, 1, 16, 2, [0, 65535, 257 * 100, 257 * 200, 65535, 0]));
  t.deepEqual(image.shape, [1, 2, 3]);
  t.deepEqual([...image.data], [0, 255, 100, 200, 255, 0]);
});

test("reads the reference sample2png PNG from a path", async (t) => {
  const image = await readImage(fixture("utils", "sample_a.sample2png.png"));
  t.deepEqual(image.shape, [1080, 5760, 3]);
});

test("PNG round trip is lossless for RGB and grey; the file lands atomically", async (t) => {
  const dir = tempDir(t);
  const rgb = ndarray(Uint8Array.from({ length: 4 * 5 * 3 }, (_, i) => (i * 37) % 256), [4, 5, 3], "uint8");
  await writeImage(join(dir, "rgb.png"), rgb);
  t.deepEqual([...(await readImage(join(dir, "rgb.png"))).data], [...rgb.data]);
  const grey = ndarray(Uint8Array.from({ length: 6 }, (_, i) => i * 40), [2, 3], "uint8");
  await writeImage(join(dir, "grey.png"), grey, { compressionLevel: 9, adaptiveFiltering: false });
  const back = await readImage(join(dir, "grey.png"));
  t.deepEqual(back.shape, [2, 3, 3]);
  t.deepEqual([...back.data], [...grey.data].flatMap((v) => [v, v, v]));
  t.deepEqual(readdirSync(dir).sort(), ["grey.png", "rgb.png"]);
});

test("writes JPEG for .jpg and .jpeg, close to the original", async (t) => {
  const dir = tempDir(t);
  const flat = ndarray(new Uint8Array(16 * 16 * 3).fill(120), [16, 16, 3], "uint8");
  for (const name of ["a.jpg", "b.JPEG"]) {
    await writeImage(join(dir, name), flat, { quality: 95 });
    t.deepEqual([...readFileSync(join(dir, name)).subarray(0, 2)], [0xff, 0xd8]);
    const back = await readImage(join(dir, name));
    t.true(back.data.every((v) => Math.abs(v - 120) <= 2));
  }
});

test("an unreadable or missing image: FileFormatError naming the file", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "not-an-image.png");
  writeFileSync(path, "plain text");
  const error = await t.throwsAsync(readImage(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.regex(error.message, new RegExp(`^${path}: cannot read the image: `));
  const missing = await t.throwsAsync(readImage(join(dir, "missing.png")), { instanceOf: FileFormatError });
  t.regex(missing.message, /missing\.png: cannot read the image: Input file is missing/);
  await t.throwsAsync(readImage(new Uint8Array([1, 2, 3])), { instanceOf: FileFormatError, message: /^image bytes: cannot read the image/ });
});

test("writeImage refuses bad arrays, extensions and options with InputError, writing nothing", async (t) => {
  const dir = tempDir(t);
  const rgb = ndarray(new Uint8Array(12), [2, 2, 3], "uint8");
  await t.throwsAsync(writeImage(join(dir, "x.bmp"), rgb), { instanceOf: InputError, message: /expected a \.png, \.jpg or \.jpeg extension/ });
  await t.throwsAsync(writeImage(join(dir, "x.png"), ndarray(new Uint8Array(16), [2, 2, 4], "uint8")), {
    instanceOf: InputError,
    message: "Expected shape [H, W] or [H, W, 3] for array but received [2, 2, 4]",
  });
  await t.throwsAsync(writeImage(join(dir, "x.png"), ndarray(new Float32Array(4), [2, 2]) as never), { instanceOf: InputError, message: /dtype uint8/ });
  await t.throwsAsync(writeImage(join(dir, "x.jpg"), rgb, { quality: 0 }), { instanceOf: InputError, message: /options\.quality/ });
  t.deepEqual(readdirSync(dir), []);
});
