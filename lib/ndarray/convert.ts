/**
 * Converts the image buffers Node users hold into the package's uint8 H x W x C {@link NdArray},
 * without copying: sharp's raw output and browser-style `ImageData`.
 *
 * @example
 * ```ts
 * import sharp from "sharp";
 * import { toImageArray } from "endosynth";
 * const raw = await sharp("frame.png").raw().toBuffer({ resolveWithObject: true });
 * const image = toImageArray(raw, "frame"); // { data: Uint8Array (same memory), shape: [H, W, C], dtype: "uint8" }
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { describe, invalidParameter, isPlainObject } from "../is.js";
import { expectArray, type NdArray } from "./ndarray.js";

/** What `sharp(...).raw().toBuffer({ resolveWithObject: true })` resolves to. */
export interface SharpRawImage {
  /** Pixels, row-major, `channels` interleaved bytes each. */
  data: Uint8Array;
  /** Size and layout of `data`, as sharp reports it. */
  info: {
    /** Pixels per row. */
    width: number;
    /** Rows. */
    height: number;
    /** Interleaved channels per pixel: 3 (RGB) or 4 (RGBA) are accepted. */
    channels: number;
  };
}

/** An RGBA image as canvas `ImageData` (or anything shaped like it) holds it. */
export interface ImageDataLike {
  /** Pixels, row-major, RGBA. */
  data: Uint8ClampedArray | Uint8Array;
  /** Pixels per row. */
  width: number;
  /** Rows. */
  height: number;
}

/** Everything {@link toImageArray} accepts. */
export type ImageInput = NdArray | SharpRawImage | ImageDataLike;

/** The longest side an image may have: far above any video frame, well below what would exhaust memory. */
export const MAX_IMAGE_SIDE = 32768;

function checkSide(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_IMAGE_SIDE) {
    throw invalidParameter(name, `an integer from 1 to ${MAX_IMAGE_SIDE}`, value);
  }
  return value;
}

function checkChannels(name: string, channels: unknown): number {
  if (channels !== 3 && channels !== 4) {
    const hint = channels === 1 || channels === 2 ? " (a grey image: convert it to RGB first, e.g. sharp's .toColourspace(\"srgb\"))" : "";
    throw new InputError(`Expected 3 (RGB) or 4 (RGBA) channels for ${name} but received ${describe(channels)}${hint}`, { key: name });
  }
  return channels;
}

function bytesView(name: string, data: unknown, expectedLength: number): Uint8Array {
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw invalidParameter(`${name}.data`, "a Uint8Array, Buffer or Uint8ClampedArray of 8-bit pixels", data);
  }
  if (data.length !== expectedLength) {
    const ratio = data.length / expectedLength;
    const hint = ratio === 2 ? " (16-bit pixels? ask sharp for 8-bit output)" : "";
    throw new InputError(`Expected ${expectedLength} bytes in ${name}.data for its size but received ${data.length}${hint}`, { key: name });
  }
  return data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
}

function fromNdArray(input: NdArray, name: string): NdArray<"uint8"> {
  const array = expectArray(input, name, "uint8");
  if (array.shape.length !== 3) {
    throw new InputError(`Expected shape [H, W, 3] or [H, W, 4] for ${name} but received [${array.shape.join(", ")}]`, { key: name });
  }
  checkSide(`${name} height`, array.shape[0]);
  checkSide(`${name} width`, array.shape[1]);
  checkChannels(name, array.shape[2]);
  return array;
}

function fromSharp(input: SharpRawImage, name: string): NdArray<"uint8"> {
  if (!isPlainObject(input.info)) throw invalidParameter(`${name}.info`, "sharp's { width, height, channels }", input.info);
  const height = checkSide(`${name}.info.height`, input.info.height);
  const width = checkSide(`${name}.info.width`, input.info.width);
  const channels = checkChannels(name, input.info.channels);
  return { data: bytesView(name, input.data, height * width * channels), shape: [height, width, channels], dtype: "uint8" };
}

function fromImageData(input: ImageDataLike, name: string): NdArray<"uint8"> {
  const height = checkSide(`${name}.height`, input.height);
  const width = checkSide(`${name}.width`, input.width);
  return { data: bytesView(name, input.data, height * width * 4), shape: [height, width, 4], dtype: "uint8" };
}

/**
 * Validates an image and returns it as a uint8 NdArray [H, W, 3] or [H, W, 4], sharing the input's
 * memory. Accepts an NdArray, sharp's raw output `{ data, info: { width, height, channels } }`,
 * or `ImageData`-like `{ data, width, height }` (RGBA). Channel order is kept as given.
 *
 * @param name what to call the input in error messages (e.g. `"image"`).
 * @throws {@link endosynth!InputError | InputError} for another dtype, 1, 2 or more than 4 channels, a side of 0 or above
 * {@link MAX_IMAGE_SIDE}, or a buffer whose length does not match the size.
 */
export function toImageArray(input: ImageInput, name = "image"): NdArray<"uint8"> {
  if (typeof input !== "object" || input === null) throw invalidParameter(name, "an image (NdArray, sharp raw output or ImageData)", input);
  if ("dtype" in input && "shape" in input) return fromNdArray(input, name);
  if ("info" in input) return fromSharp(input, name);
  if ("width" in input && "height" in input) return fromImageData(input, name);
  throw invalidParameter(name, "an image (NdArray, sharp raw output or ImageData)", input);
}
