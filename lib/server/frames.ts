/**
 * Frames as clients send them: PNG, JPEG, or a NumPy `.npy` of uint8 [H, W, 3] (or [H, W, 4]), over
 * HTTP with a Content-Type or over a WebSocket recognised by their first bytes. Decoded with the
 * same readers as `endosynth infer` (sharp for images, parseNpy for arrays), so a frame gives the
 * same pixels, hence the same depth, whichever way it arrives.
 * @module
 */
import sharp from "sharp";
import { FileFormatError, InputError } from "../errors.js";
import { readImage } from "../io/image.js";
import { parseNpy } from "../io/npy.js";
import { describe } from "../is.js";
import { toImageArray } from "../ndarray/convert.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { HttpError } from "./http_error.js";

/** The media types a frame may come in. */
export const FRAME_MEDIA_TYPES = ["image/png", "image/jpeg", "application/x-npy"] as const;

/** One of {@link FRAME_MEDIA_TYPES}. */
export type FrameMediaType = (typeof FRAME_MEDIA_TYPES)[number];

const SIGNATURES: readonly [FrameMediaType, readonly number[]][] = [
  ["image/png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ["image/jpeg", [0xff, 0xd8, 0xff]],
  ["application/x-npy", [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]],
];

/** The frame type a Content-Type names (parameters and case ignored), or a 415 listing the accepted ones. */
export function frameMediaType(contentType: string | undefined): FrameMediaType {
  const type = contentType?.split(";")[0].trim().toLowerCase();
  if ((FRAME_MEDIA_TYPES as readonly string[]).includes(type ?? "")) return type as FrameMediaType;
  const received = contentType === undefined ? "no Content-Type" : `Content-Type ${describe(contentType)}`;
  throw new HttpError(415, `Expected a frame as ${FRAME_MEDIA_TYPES.join(", ")} but received ${received}`, { key: "Content-Type" });
}

/** The frame type whose signature `bytes` start with, if any. */
export function sniffFrameType(bytes: Uint8Array): FrameMediaType | undefined {
  return SIGNATURES.find(([, signature]) => signature.every((byte, index) => bytes[index] === byte))?.[0];
}

/** What a frame's bytes look like, for errors: empty, another accepted type, or their first bytes. */
export function describeStart(bytes: Uint8Array): string {
  if (bytes.length === 0) return "it is empty";
  const actual = sniffFrameType(bytes);
  if (actual !== undefined) return `it is ${actual} (say so in its Content-Type)`;
  return `it starts with bytes ${Buffer.from(bytes.subarray(0, 8)).toString("hex")}`;
}

/** Limits on what a frame may decode to. */
export interface FrameLimits {
  /** Pixels (width x height) an image may declare: a small PNG can claim a huge size. */
  maxPixels: number;
}

/**
 * Decodes a frame to uint8 [H, W, 3|4] pixels.
 * @param name what to call the frame in errors ("body", "frame 3").
 * @throws {@link endosynth!InputError | InputError} wrong dtype or shape of an array, or an image larger than `maxPixels`.
 * @throws {@link endosynth!FileFormatError | FileFormatError} bytes that are not the declared type, or that cannot be decoded.
 */
export async function decodeFrame(bytes: Uint8Array, type: FrameMediaType, limits: FrameLimits, name: string): Promise<NdArray<"uint8">> {
  if (sniffFrameType(bytes) !== type) {
    throw new FileFormatError(`Expected ${name} to be ${type} but ${describeStart(bytes)}`, { key: name });
  }
  if (type === "application/x-npy") return toImageArray(parseNpy(bytes, { file: name }), name);
  await checkImageSize(bytes, limits, name);
  return readImage(bytes);
}

/** Refuses an image whose header declares more pixels than allowed, before decoding allocates them. */
async function checkImageSize(bytes: Uint8Array, { maxPixels }: FrameLimits, name: string): Promise<void> {
  let width: number;
  let height: number;
  try {
    ({ width, height } = await sharp(bytes).metadata());
  } catch (error) {
    throw new FileFormatError(`${name}: cannot read the image: ${(error as Error).message}`, { key: name, cause: error });
  }
  if (width * height > maxPixels) {
    throw new InputError(`Expected at most ${maxPixels} pixels in ${name} but it declares ${width}x${height}`, { key: name });
  }
}
