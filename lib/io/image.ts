/**
 * Image files through sharp (libvips): read any format sharp reads into a uint8 RGB
 * {@link NdArray}, upright as its EXIF orientation says (as OpenCV's `imread` and Pillow's
 * `exif_transpose` do), and write PNG or JPEG. sharp is loaded on the first call, so importing
 * the package never loads it.
 *
 * @example
 * ```ts
 * import { readImage, writeImage } from "endosynth";
 * const rgb = await readImage("frame.jpg"); // uint8 [H, W, 3]
 * await writeImage("frame.png", rgb);
 * ```
 * @module
 */
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import type { Sharp, SharpOptions } from "sharp";
import { BackendUnavailableError, FileFormatError, InputError } from "../errors.js";
import { assertBoolean, assertIntegerInRange, assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import { expectArray, type NdArray } from "../ndarray/ndarray.js";
import { withAtomicFile } from "./atomic.js";
import { unreadableReason } from "./read_file.js";

type SharpFactory = (input?: Uint8Array | string, options?: SharpOptions) => Sharp;

let sharpModule: Promise<SharpFactory> | undefined;

/** sharp, imported on first use: its native library costs ~50 ms and memory that most callers never need. */
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import("sharp").then(
    (module) => module.default as SharpFactory,
    (error: unknown) => {
      sharpModule = undefined;
      throw new BackendUnavailableError(`sharp (the image library) cannot be loaded: ${(error as Error).message}`, { cause: error });
    },
  );
  return sharpModule;
}

/** How {@link readImage} orients pixels: `"apply"` the EXIF orientation (upright), or `"keep"` the stored order. */
export type ImageOrientation = "apply" | "keep";

/** Options of {@link readImage}. */
export interface ReadImageOptions {
  /**
   * `"apply"` (default): rotate and flip as the file's EXIF orientation tag says, so a camera or
   * phone photo comes out upright (as OpenCV's `imread` and Pillow's `exif_transpose` do).
   * `"keep"`: the pixels in stored order, the tag ignored.
   */
  orientation?: ImageOrientation;
}

const ORIENTATIONS: readonly ImageOrientation[] = ["apply", "keep"];

/** Options of {@link writeImage}. */
export interface WriteImageOptions {
  /** JPEG quality, 1..100. Default 90. */
  quality?: number;
  /**
   * PNG zlib level, 0..9 (PNG is lossless at every level: this trades size for speed). Default 6,
   * libpng's own default.
   */
  compressionLevel?: number;
  /**
   * PNG: choose a row filter per row, as libpng and Pillow do. Default `true`: files ~2x smaller
   * than sharp's unfiltered default, encoding ~2x slower.
   */
  adaptiveFiltering?: boolean;
}

/**
 * Reads an image into a uint8 [H, W, 3] RGB array: alpha is dropped (not blended), grey becomes
 * RGB, 16-bit images are scaled to 8 bits, CMYK and other colour spaces are converted to sRGB, and
 * the EXIF orientation is applied unless `options.orientation` is `"keep"` (an image stored
 * sideways with orientation 6 comes back upright, its width and height swapped).
 *
 * @param input a path, or the encoded file's bytes.
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file when it is missing or sharp cannot decode it.
 * @throws {@link endosynth!InputError | InputError} for bad options.
 */
export async function readImage(input: string | Uint8Array, options?: ReadImageOptions): Promise<NdArray<"uint8">> {
  if (typeof input !== "string" && !(input instanceof Uint8Array)) throw invalidParameter("input", "a path or a Uint8Array", input);
  assertOptions("options", options as unknown, ["orientation"]);
  const orientation = options?.orientation ?? "apply";
  assertOneOf("options.orientation", orientation, ORIENTATIONS);
  const file = typeof input === "string" ? input : undefined;
  const what = file ?? "image bytes";
  const sharp = await loadSharp();
  const limit = pixelLimit(typeof input === "string" ? await fileSize(input) : input.byteLength);
  try {
    const image = sharp(input, { limitInputPixels: limit });
    if (orientation === "apply") image.autoOrient();
    const { data, info } = await image.removeAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), shape: [info.height, info.width, info.channels], dtype: "uint8" };
  } catch (error) {
    const message = /pixel limit/.test((error as Error).message)
      ? `it declares more than ${limit} pixels, more than its size can hold (the limit is what a file of that size can decode to, at deflate's best ratio)`
      : (error as Error).message;
    throw new FileFormatError(`${what}: cannot read the image: ${message}`, { file, cause: error });
  }
}

/** Decoded bytes a pixel may take while sharp works (8-bit RGBA). */
const BYTES_PER_PIXEL = 4;
/** Decoded memory any image may take, however small its file: 16 Mpixels, far beyond a video frame. */
const BASE_DECODED_BYTES = 64 * 1024 * 1024;
/** The best ratio deflate (PNG) reaches; JPEG's is below 100. */
const MAX_COMPRESSION_RATIO = 1032;
/** sharp's own default limit (0x3FFF squared), which stays the ceiling. */
const SHARP_PIXEL_LIMIT = 0x3fff * 0x3fff;

/**
 * The most pixels a file of this size may declare: what it could honestly decode to, plus 64 MiB
 * for any image. A damaged or hostile header claiming 16000 x 16000 pixels in 200 bytes is refused
 * before libvips allocates a gigabyte for it.
 */
function pixelLimit(fileBytes: number): number {
  return Math.min(SHARP_PIXEL_LIMIT, Math.floor((BASE_DECODED_BYTES + MAX_COMPRESSION_RATIO * fileBytes) / BYTES_PER_PIXEL));
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    throw new FileFormatError(`${path}: cannot read the image: ${unreadableReason(error)}`, { file: path, cause: error });
  }
}

const FORMATS: Readonly<Record<string, "png" | "jpeg">> = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg" };

/**
 * Writes a uint8 [H, W] (grey) or [H, W, 3] (RGB) array as PNG or JPEG, chosen by the path's
 * extension (.png, .jpg, .jpeg), atomically (temporary file + rename).
 *
 * @throws {@link endosynth!InputError | InputError} for another dtype or shape, an unknown extension or bad options, and naming
 * the file when it cannot be written (its folder is missing, it is a folder, permission denied,
 * the encoder failed); the previous file, if any, is kept.
 */
export async function writeImage(path: string, array: NdArray<"uint8">, options?: WriteImageOptions): Promise<void> {
  assertString("path", path);
  assertOptions("options", options as unknown, ["quality", "compressionLevel", "adaptiveFiltering"]);
  const format = FORMATS[extname(path).toLowerCase()];
  if (format === undefined) {
    throw new InputError(`Cannot tell the image format of ${path}: expected a .png, .jpg or .jpeg extension`, { file: path });
  }
  const quality = options?.quality ?? 90;
  const compressionLevel = options?.compressionLevel ?? 6;
  assertIntegerInRange("options.quality", quality, 1, 100);
  assertIntegerInRange("options.compressionLevel", compressionLevel, 0, 9);
  const adaptiveFiltering = options?.adaptiveFiltering ?? true;
  assertBoolean("options.adaptiveFiltering", adaptiveFiltering);
  const image = expectArray(array, "array", "uint8");
  const [height, width, channels = 1] = image.shape;
  if (image.shape.length < 2 || image.shape.length > 3 || (channels !== 1 && channels !== 3) || height === 0 || width === 0) {
    throw new InputError(`Expected shape [H, W] or [H, W, 3] for array but received [${image.shape.join(", ")}]`, { key: "array" });
  }
  const pixels = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const sharp = await loadSharp();
  const encoder = sharp(pixels, { raw: { width, height, channels: channels as 1 | 3 } });
  const encoded = format === "png" ? encoder.png({ compressionLevel, adaptiveFiltering }) : encoder.jpeg({ quality });
  await withAtomicFile(path, async (temporary) => {
    try {
      await encoded.toFile(temporary);
    } catch (error) {
      throw new InputError(`Cannot write ${path}: the ${format.toUpperCase()} encoder failed: ${(error as Error).message}`, { file: path, cause: error });
    }
  });
}
