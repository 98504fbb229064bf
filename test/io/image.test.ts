import test from "ava";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { crc32, deflateSync } from "node:zlib";
import sharp from "sharp";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { readImage, writeImage } from "../../lib/io/image.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, repoRoot, temporaryDirectory } from "../support/fixtures.js";

const run = promisify(execFile);

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
  t.regex(missing.message, /missing\.png: cannot read the image: no such file/);
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

/** A 4 wide, 2 high image of four distinct pixels per row, stored as given with an EXIF orientation tag. */
const STORED = [
  [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
  [0, 255, 255], [255, 0, 255], [128, 128, 128], [0, 0, 0],
];

async function withOrientation(format: "tiff" | "jpeg", orientation: number, scale = 1): Promise<Buffer> {
  // Each pixel becomes a scale x scale block, so JPEG's 8x8 blocks keep the colours clean.
  const width = 4 * scale;
  const height = 2 * scale;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(STORED[Math.floor(y / scale) * 4 + Math.floor(x / scale)], (y * width + x) * 3);
  const image = sharp(raw, { raw: { width, height, channels: 3 } }).withMetadata({ orientation });
  return format === "tiff" ? image.tiff({ compression: "none" }).toBuffer() : image.jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer();
}

function pixelAt(image: { data: Uint8Array; shape: readonly number[] }, y: number, x: number): number[] {
  const at = (y * image.shape[1] + x) * 3;
  return [...image.data.subarray(at, at + 3)];
}

test("EXIF orientation is applied on read, as OpenCV's imread and Pillow's exif_transpose do", async (t) => {
  // Orientation 6: the camera was turned 90° clockwise; viewers rotate the stored pixels 90° clockwise.
  const rotated = await readImage(await withOrientation("tiff", 6));
  t.deepEqual(rotated.shape, [4, 2, 3]);
  t.deepEqual(pixelAt(rotated, 0, 0), STORED[4]); // stored bottom-left lands top-left
  t.deepEqual(pixelAt(rotated, 0, 1), STORED[0]);
  t.deepEqual(pixelAt(rotated, 3, 1), STORED[3]);
  // Orientation 3: upside down.
  const flipped = await readImage(await withOrientation("tiff", 3));
  t.deepEqual(flipped.shape, [2, 4, 3]);
  t.deepEqual(pixelAt(flipped, 0, 0), STORED[7]);
  t.deepEqual(pixelAt(flipped, 1, 3), STORED[0]);
  // Orientation 2: mirrored left to right.
  const mirrored = await readImage(await withOrientation("tiff", 2));
  t.deepEqual(pixelAt(mirrored, 0, 0), STORED[3]);
});

test("a camera JPEG with orientation 8 comes out upright; { orientation: \"keep\" } gives the stored pixels", async (t) => {
  const jpeg = await withOrientation("jpeg", 8, 8);
  const upright = await readImage(jpeg);
  t.deepEqual(upright.shape, [32, 16, 3]);
  const close = (actual: number[], expected: number[]) => actual.every((value, i) => Math.abs(value - expected[i]) <= 8);
  t.true(close(pixelAt(upright, 4, 4), STORED[3]), String(pixelAt(upright, 4, 4))); // 90° counter-clockwise: top-right lands top-left
  t.true(close(pixelAt(upright, 28, 12), STORED[4]), String(pixelAt(upright, 28, 12)));
  const stored = await readImage(jpeg, { orientation: "keep" });
  t.deepEqual(stored.shape, [16, 32, 3]);
  t.true(close(pixelAt(stored, 4, 4), STORED[0]));
  await t.throwsAsync(readImage(jpeg, { orientation: "exif" as never }), { instanceOf: InputError, message: /Expected one of "apply", "keep" for options\.orientation/ });
  await t.throwsAsync(readImage(jpeg, { rotate: true } as never), { instanceOf: InputError, message: /Unknown option "rotate"/ });
});

test("importing the package does not load sharp; reading an image does", async (t) => {
  const script = join(tempDir(t), "probe.mts");
  const vipsLoaded = "() => process.report.getReport().sharedObjects.some((path) => /vips/.test(path))";
  writeFileSync(
    script,
    `const loaded = ${vipsLoaded};\n` +
      `const api = await import(${JSON.stringify(join(repoRoot, "lib/index.ts"))});\n` +
      "const before = loaded();\n" +
      `await api.readImage(${JSON.stringify(fixture("utils", "sample_a.sample2png.png"))});\n` +
      "console.log(JSON.stringify({ before, after: loaded() }));\n",
  );
  const { stdout } = await run(process.execPath, ["--import", "tsx", script], { cwd: repoRoot });
  t.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)!), { before: false, after: true });
});

test("writeImage: a missing folder, a folder in the way or an encoder failure is an InputError naming the file", async (t) => {
  const dir = tempDir(t);
  const rgb = ndarray(new Uint8Array(12), [2, 2, 3], "uint8");
  const missing = join(dir, "no", "such", "out.png");
  const error = await t.throwsAsync(writeImage(missing, rgb), { instanceOf: InputError, message: `Cannot write ${missing}: its folder does not exist` });
  t.is(error.file, missing);
  mkdirSync(join(dir, "taken.png"));
  await t.throwsAsync(writeImage(join(dir, "taken.png"), rgb), { instanceOf: InputError, message: /taken\.png: it is a folder$/ });
  // JPEG cannot hold more than 65535 pixels per row: sharp's error comes back typed.
  const wide = ndarray(new Uint8Array(70_000 * 3), [1, 70_000, 3], "uint8");
  const encoder = await t.throwsAsync(writeImage(join(dir, "wide.jpg"), wide), { instanceOf: InputError });
  t.regex(encoder.message, /^Cannot write .*wide\.jpg: the JPEG encoder failed: /);
  t.deepEqual(readdirSync(dir), ["taken.png"]);
});

test("a header declaring far more pixels than its file can hold is refused before decoding", async (t) => {
  const png = Buffer.from(handMadePng(8, 8, 8, 2, new Array(8 * 8 * 3).fill(0)));
  // 16000 x 16000 (sharp's own limit allows it): 1 GB of pixels from a 100-byte file.
  png.writeUInt32BE(16_000, 16);
  png.writeUInt32BE(16_000, 20);
  const error = await t.throwsAsync(readImage(png), { instanceOf: FileFormatError });
  t.regex(error.message, /^image bytes: cannot read the image: it declares more than \d+ pixels, more than its size can hold/);
  // A real 24-Mpixel image of one colour compresses ~900:1 (80 KB of PNG, 140 KB of JPEG) and still reads.
  for (const format of ["png", "jpeg"] as const) {
    const flat = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: "white" } })[format]().toBuffer();
    t.true(flat.length < 200_000);
    t.deepEqual((await readImage(flat)).shape, [4000, 6000, 3], format);
  }
});
