import test from "ava";
import sharp from "sharp";
import { InputError } from "../../lib/errors.js";
import { MAX_IMAGE_SIDE, toImageArray } from "../../lib/ndarray/convert.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";

test("sharp's raw output becomes an [H, W, C] array over the same memory", async (t) => {
  const png = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer();
  const raw = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const image = toImageArray(raw, "frame");
  t.deepEqual(image.shape, [4, 5, 3]);
  t.is(image.dtype, "uint8");
  t.is(image.data.buffer, raw.data.buffer);
  t.deepEqual([...image.data.subarray(0, 3)], [10, 20, 30]);
});

test("ImageData-like RGBA becomes [H, W, 4] over the same memory", (t) => {
  const data = new Uint8ClampedArray(2 * 3 * 4).map((_, i) => i);
  const image = toImageArray({ data, width: 3, height: 2 });
  t.deepEqual(image.shape, [2, 3, 4]);
  t.true(image.data instanceof Uint8Array);
  t.is(image.data.buffer, data.buffer);
  t.is(image.data[23], 23);
});

test("a uint8 NdArray with 3 or 4 channels passes through unchanged", (t) => {
  const array = ndarray(new Uint8Array(12), [2, 2, 3], "uint8");
  t.is(toImageArray(array), array);
});

test("grey, two-channel or five-channel input: InputError naming the input and the count", (t) => {
  t.throws(() => toImageArray({ data: new Uint8Array(4), info: { width: 2, height: 2, channels: 1 } }, "frame"), {
    instanceOf: InputError,
    message: /Expected 3 \(RGB\) or 4 \(RGBA\) channels for frame but received 1 \(a grey image: convert it to RGB first/,
  });
  t.throws(() => toImageArray(ndarray(new Uint8Array(20), [2, 2, 5], "uint8"), "frame"), { instanceOf: InputError, message: /channels for frame but received 5$/ });
});

test("a buffer that does not match the size: InputError with expected and actual lengths", (t) => {
  t.throws(() => toImageArray({ data: new Uint8Array(24), info: { width: 2, height: 2, channels: 3 } }), {
    instanceOf: InputError,
    message: "Expected 12 bytes in image.data for its size but received 24 (16-bit pixels? ask sharp for 8-bit output)",
  });
  t.throws(() => toImageArray({ data: new Uint8ClampedArray(15), width: 2, height: 2 }), {
    instanceOf: InputError,
    message: "Expected 16 bytes in image.data for its size but received 15",
  });
});

test("another dtype, rank or an absurd size: InputError", (t) => {
  t.throws(() => toImageArray(ndarray(new Float32Array(12), [2, 2, 3])), { instanceOf: InputError, message: /dtype uint8 for image but received float32/ });
  t.throws(() => toImageArray(ndarray(new Uint8Array(12), [4, 3], "uint8")), { instanceOf: InputError, message: /shape \[H, W, 3\] or \[H, W, 4\] for image but received \[4, 3\]/ });
  t.throws(() => toImageArray({ data: new Uint8Array(0), width: 0, height: 2 }), { instanceOf: InputError, message: /Expected an integer from 1 to 32768 for image\.width but received 0/ });
  t.throws(() => toImageArray(ndarray(new Uint8Array(0), [MAX_IMAGE_SIDE + 1, 0, 3], "uint8")), { instanceOf: InputError, message: /image height but received 32769/ });
  t.throws(() => toImageArray("frame.png" as never), { instanceOf: InputError, message: /Expected an image \(NdArray, sharp raw output or ImageData\) for image/ });
});
