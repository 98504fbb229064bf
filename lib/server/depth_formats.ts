/**
 * The forms depth is answered in, and how a client asks for one:
 *
 * | format | Content-Type | what | asked for with |
 * |---|---|---|---|
 * | `npy` (default) | `application/x-npy` | float32 [H, W] metres, the bytes `endosynth infer -o x.npy` writes | `Accept: application/x-npy`, no Accept, or `?format=npy` |
 * | `colormap` | `image/png` | RGB, `depth2rgb` over `?range=min,max` metres | `Accept: image/png` or `?format=colormap` |
 * | `mm16` | `image/png` | 16-bit grey, depth in whole millimetres | `?format=mm16` |
 *
 * `?format=` wins over `Accept`.
 * @module
 */
import sharp from "sharp";
import { InputError } from "../errors.js";
import { encodeNpy } from "../io/npy.js";
import { describe } from "../is.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { depth2rgb } from "../viz/depth2rgb.js";
import { HttpError } from "./http_error.js";

/** The forms depth can be answered in (see the module notes). */
export const DEPTH_FORMATS = ["npy", "colormap", "mm16"] as const;

/** One of {@link DEPTH_FORMATS}. */
export type DepthFormat = (typeof DEPTH_FORMATS)[number];

/** A colour-map range in metres, [nearest, farthest]. */
export type DepthRange = readonly [number, number];

/** How to answer: the format, and the colour map's range (used by `colormap` only). */
export interface DepthEncoding {
  format: DepthFormat;
  range: DepthRange;
}

/** An encoded answer: its Content-Type and its bytes (in parts, sent one after another). */
export interface EncodedDepth {
  contentType: string;
  parts: Uint8Array[];
}

const CONTENT_TYPES: Readonly<Record<DepthFormat, string>> = { npy: "application/x-npy", colormap: "image/png", mm16: "image/png" };

/** The largest depth a 16-bit millimetre map holds, metres. */
const MAX_MILLIMETRES = 65535;

/**
 * PNG settings for answers: decoded pixels are the same at every level, and the client is usually
 * on the same machine or network, so spend little time compressing.
 */
const FAST_PNG = { compressionLevel: 2, adaptiveFiltering: false } as const;

/** Parses `"min,max"` metres (two finite increasing numbers), naming `key` when it is not. */
export function parseDepthRange(text: string, key: string): DepthRange {
  const parts = text.split(",").map((part) => (part.trim() === "" ? NaN : Number(part)));
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0] >= parts[1]) {
    throw new InputError(`Expected two increasing numbers of metres such as 0.02,0.2 for ${key} but received ${describe(text)}`, { key });
  }
  return [parts[0], parts[1]];
}

/** Checks a format name, naming `key` when it is not one. */
export function parseDepthFormat(text: string, key: string): DepthFormat {
  if ((DEPTH_FORMATS as readonly string[]).includes(text)) return text as DepthFormat;
  throw new InputError(`Expected one of ${DEPTH_FORMATS.join(", ")} for ${key} but received ${describe(text)}`, { key });
}

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function parseAccept(accept: string): MediaRange[] {
  return accept.split(",").flatMap((item) => {
    const [range, ...parameters] = item.split(";").map((part) => part.trim().toLowerCase());
    const [type, subtype] = range.split("/");
    if (!type || !subtype) return [];
    const q = parameters.find((parameter) => parameter.startsWith("q="));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    return [{ type, subtype, q: Number.isFinite(weight) ? weight : 0 }];
  });
}

/** The weight Accept gives a content type: that of its most specific matching range (RFC 9110). */
function weightOf(contentType: string, ranges: readonly MediaRange[]): number {
  const [type, subtype] = contentType.split("/");
  const specificity = (range: MediaRange) =>
    range.type === type && range.subtype === subtype ? 2 : range.type === type && range.subtype === "*" ? 1 : range.type === "*" ? 0 : -1;
  let best: MediaRange | undefined;
  for (const range of ranges) {
    const rank = specificity(range);
    if (rank >= 0 && (best === undefined || rank > specificity(best))) best = range;
  }
  return best?.q ?? 0;
}

/** The format an Accept header prefers among npy and colormap (npy on a tie), or a 406. */
function negotiate(accept: string | undefined): DepthFormat {
  if (accept === undefined || accept.trim() === "") return "npy";
  const ranges = parseAccept(accept);
  const npy = weightOf(CONTENT_TYPES.npy, ranges);
  const colormap = weightOf(CONTENT_TYPES.colormap, ranges);
  if (npy <= 0 && colormap <= 0) {
    throw new HttpError(406, `Cannot answer Accept: ${accept}: depth comes as application/x-npy or image/png (see ?format=)`, { key: "Accept" });
  }
  return colormap > npy ? "colormap" : "npy";
}

/**
 * The encoding a request asks for: `?format=` if given, else the Accept header; `?range=` for a
 * colour map, else `defaultRange`.
 * @throws {@link endosynth!InputError | InputError} a bad format or range, or a range given for a format without colours.
 * @throws {@link endosynth!HttpError | HttpError} 406 when Accept allows neither application/x-npy nor image/png.
 */
export function requestedEncoding(query: URLSearchParams, accept: string | undefined, defaultRange: DepthRange): DepthEncoding {
  const formatText = query.get("format");
  const format = formatText === null ? negotiate(accept) : parseDepthFormat(formatText, "format");
  const rangeText = query.get("range");
  if (rangeText !== null && format !== "colormap") {
    throw new InputError(`range applies to colour maps (format=colormap or Accept: image/png), not to format ${format}`, { key: "range" });
  }
  return { format, range: rangeText === null ? defaultRange : parseDepthRange(rangeText, "range") };
}

/**
 * Depth in whole millimetres (nearest), uint16: 0 where there is no valid depth (NaN, infinite,
 * zero or negative), 65535 for 65.535 m and beyond.
 */
export function depthToMillimetres(depth: NdArray<"float32">): Uint16Array {
  const out = new Uint16Array(depth.data.length);
  depth.data.forEach((metres, index) => {
    if (metres > 0 && metres < Infinity) out[index] = Math.min(MAX_MILLIMETRES, Math.round(metres * 1000));
  });
  return out;
}

/** Depth encoded as `encoding` asks. */
export async function encodeDepth(depth: NdArray<"float32">, { format, range }: DepthEncoding): Promise<EncodedDepth> {
  const [height, width] = depth.shape;
  const contentType = CONTENT_TYPES[format];
  if (format === "npy") return { contentType, parts: encodeNpy(depth, "depth") };
  if (format === "colormap") {
    const colours = depth2rgb(depth, range[0], range[1]);
    return { contentType, parts: [await sharp(colours.data, { raw: { width, height, channels: 3 } }).png(FAST_PNG).toBuffer()] };
  }
  const millimetres = sharp(depthToMillimetres(depth), { raw: { width, height, channels: 1 } }).toColourspace("grey16");
  return { contentType, parts: [await millimetres.png(FAST_PNG).toBuffer()] };
}
