/** A reader of 16-bit greyscale PNGs for the tests (sharp scales them to 8 bits on raw output). */
import { crc32, inflateSync } from "node:zlib";

/**
 * A PNG decoder for 16-bit greyscale (all five row filters), written from the PNG specification:
 * independent of the encoder under test. Checks every chunk's CRC.
 */
export function decodeGrey16Png(bytes: Uint8Array): { width: number; height: number; values: Uint16Array } {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!view.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error("not a PNG");
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < view.length; ) {
    const length = view.readUInt32BE(at);
    const type = view.toString("latin1", at + 4, at + 8);
    const data = view.subarray(at + 8, at + 8 + length);
    if (view.readUInt32BE(at + 8 + length) !== crc32(view.subarray(at + 4, at + 8 + length))) throw new Error(`bad CRC in ${type}`);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 16 || data[9] !== 0 || data[12] !== 0) throw new Error("not 16-bit non-interlaced greyscale");
    }
    if (type === "IDAT") idat.push(data);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = 2 * width;
  const pixels = Buffer.alloc(stride * height);
  const paeth = (a: number, b: number, c: number) => {
    const p = a + b - c;
    const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i >= 2 ? pixels[y * stride + i - 2] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = i >= 2 && y > 0 ? pixels[(y - 1) * stride + i - 2] : 0;
      const predicted = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      pixels[y * stride + i] = (x + predicted) & 0xff;
    }
  }
  const values = new Uint16Array(width * height);
  for (let i = 0; i < values.length; i++) values[i] = pixels.readUInt16BE(2 * i);
  return { width, height, values };
}

