/**
 * A deterministic, synthetic sample in the EndoSynth format, for demos, tests and benchmarks on a
 * machine without the dataset. It is a drawing, not data: a tissue tunnel whose depth grows
 * towards the centre, and two instrument shafts coming in from the lower corners.
 * @module
 */
import { InputError } from "../errors.js";
import { assertOptions, isInteger } from "../is.js";
import { roundFloat16 } from "../ndarray/float16.js";
import type { EndoSynthSample } from "./sample.js";

/** Options of {@link syntheticSample}. */
export interface SyntheticSampleOptions {
  /** Height in pixels; default 1080. */
  height?: number;
  /** Width in pixels; default 1920. */
  width?: number;
}

/** Nearest and farthest tissue, metres: the range of EndoSynth scenes. */
const NEAR = 0.03;
const FAR = 0.25;

interface Instrument {
  /** Class index ({@link SEG_CLASSES}). */
  seg: number;
  /** Where the shaft enters and ends, in fractions of width and height. */
  from: [number, number];
  to: [number, number];
  /** Half width of the shaft, in fractions of the height. */
  radius: number;
}

const INSTRUMENTS: readonly Instrument[] = [
  { seg: 1, from: [0, 1], to: [0.42, 0.55], radius: 0.05 },
  { seg: 4, from: [1, 0.95], to: [0.6, 0.5], radius: 0.04 },
];

/**
 * Deterministic pixel noise in [-1, 1) (an integer hash of the position), like a sensor's: without
 * it the drawing would compress far better than real frames and flatter compressed-read timings.
 */
function noise(i: number): number {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 31 - 1;
}

/** Distance from point p to segment ab, and how far along ab (0..1) its nearest point lies. */
function toSegment(px: number, py: number, [ax, ay]: [number, number], [bx, by]: [number, number]): [number, number] {
  const dx = bx - ax;
  const dy = by - ay;
  const along = Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return [Math.hypot(px - (ax + along * dx), py - (ay + along * dy)), along];
}

/**
 * Draws a synthetic EndoSynth sample: the same options always give the same bytes.
 * @throws {@link endosynth!InputError | InputError} for a size that is not an integer from 8 to 8192.
 * @example
 * ```ts
 * writeSample("demo.npz", syntheticSample({ height: 540, width: 960 }));
 * ```
 */
export function syntheticSample(options?: SyntheticSampleOptions): EndoSynthSample {
  assertOptions("options", options as unknown, ["height", "width"]);
  const height = options?.height ?? 1080;
  const width = options?.width ?? 1920;
  for (const [name, value] of [["height", height], ["width", width]] as const) {
    if (!isInteger(value) || value < 8 || value > 8192) {
      throw new InputError(`Expected an integer from 8 to 8192 for options.${name} but received ${value}`, { key: name });
    }
  }
  const rgb = new Uint8Array(height * width * 3);
  const depth = new Float32Array(height * width);
  const seg = new Uint8Array(height * width);
  const aspect = width / height;
  for (let y = 0; y < height; y++) {
    const v = (y + 0.5) / height;
    for (let x = 0; x < width; x++) {
      const u = (x + 0.5) / width;
      const i = y * width + x;
      // Tunnel: far at the centre, near at the rim; a faint ripple so the colormap has texture.
      const radius = Math.min(1, Math.hypot((u - 0.5) * aspect, v - 0.5) / (0.5 * aspect));
      let metres = FAR - (FAR - NEAR) * Math.sqrt(radius) + 0.004 * Math.sin(40 * u) * Math.cos(30 * v);
      let shade = 1 - (metres - NEAR) / (FAR - NEAR);
      let colour: [number, number, number] = [200 * shade + 40, 90 * shade + 30, 95 * shade + 35];
      for (const tool of INSTRUMENTS) {
        const [distance, along] = toSegment(u * aspect, v, [tool.from[0] * aspect, tool.from[1]], [tool.to[0] * aspect, tool.to[1]]);
        if (distance >= tool.radius) continue;
        // Shafts come closer towards the lower corners they enter from.
        metres = Math.min(metres, NEAR + 0.06 * along);
        shade = 1 - distance / tool.radius;
        colour = [110 + 90 * shade, 115 + 90 * shade, 120 + 90 * shade];
        seg[i] = tool.seg;
      }
      depth[i] = roundFloat16(metres);
      const grain = 6 * noise(i);
      rgb[i * 3] = Math.round(colour[0] + grain);
      rgb[i * 3 + 1] = Math.round(colour[1] + grain);
      rgb[i * 3 + 2] = Math.round(colour[2] + grain);
    }
  }
  return {
    rgb: { data: rgb, shape: [height, width, 3], dtype: "uint8" },
    depth: { data: depth, shape: [height, width], dtype: "float16" },
    seg: { data: seg, shape: [height, width], dtype: "uint8" },
  };
}
