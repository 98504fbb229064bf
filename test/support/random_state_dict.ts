/**
 * Random state dicts with exactly the keys, shapes and dtypes of a real checkpoint (a fixture's
 * `keys_full.json`), generated lazily one tensor at a time: piped into {@link writePth} they make a
 * full-size checkpoint (MiDaS: 345 M parameters, 1.4 GB) in bounded memory, for tests and
 * benchmarks that must not depend on the authors' downloads.
 *
 * Test support (benchmark scripts use it too): never part of the package.
 *
 * @example
 * ```ts
 * const keys = JSON.parse(readFileSync("fixtures/midas/keys_full.json", "utf8"));
 * writePth("midas-random.pth", randomStateDictFromKeys(keys, 42));
 * ```
 * @module
 */
import { invalidParameter } from "../../lib/is.js";
import { roundFloat16 } from "../../lib/ndarray/float16.js";
import { DTYPES, isShape, size, zeros, type DType, type NdArray } from "../../lib/ndarray/ndarray.js";

/** One key of a `keys_full.json`. */
export interface KeySpec {
  /** State-dict key. */
  readonly key: string;
  /** Its shape. */
  readonly shape: readonly number[];
  /** Its dtype (NumPy spelling). */
  readonly dtype: DType;
}

/** The content of a fixture's `keys_full.json` (other fields are ignored). */
export interface KeysJson {
  /** Every key of the checkpoint, in its order. */
  readonly keys: readonly KeySpec[];
}

/**
 * A deterministic random state dict with the given keys, re-iterable, each tensor made only when
 * the iteration reaches it. A tensor's values depend only on `seed` and its key (not on its
 * position), so the same key gets the same values in any subset or order.
 *
 * Values are uniform and scaled like a trained network's so a model built from them computes
 * finite activations: weights of rank >= 2 in ±1/sqrt(fan-in), 1-D `weight`s (norm scales)
 * 1 ± 0.1, other floats ±0.1; integers in [0, 10); bools random.
 * @throws {InputError} when `keysJson` is not `{ keys: [{ key, shape, dtype }, ...] }`.
 */
export function randomStateDictFromKeys(keysJson: KeysJson, seed: number): Iterable<[string, NdArray]> {
  const specs = validateKeys(keysJson);
  if (!Number.isSafeInteger(seed)) throw invalidParameter("seed", "an integer", seed);
  return {
    *[Symbol.iterator]() {
      for (const spec of specs) yield [spec.key, randomTensor(spec, seed)];
    },
  };
}

function validateKeys(keysJson: KeysJson): readonly KeySpec[] {
  const keys = (keysJson as Partial<KeysJson> | null)?.keys;
  if (!Array.isArray(keys)) throw invalidParameter("keysJson.keys", "an array of { key, shape, dtype }", keys);
  keys.forEach((spec: Partial<KeySpec>, i) => {
    if (typeof spec?.key !== "string") throw invalidParameter(`keysJson.keys[${i}].key`, "a string", spec?.key);
    if (!isShape(spec.shape)) throw invalidParameter(`keysJson.keys[${i}].shape`, "an array of non-negative integers", spec.shape);
    if (!DTYPES.includes(spec.dtype as DType)) throw invalidParameter(`keysJson.keys[${i}].dtype`, `one of ${DTYPES.join(", ")}`, spec.dtype);
  });
  return keys;
}

function randomTensor(spec: KeySpec, seed: number): NdArray {
  const array = zeros(spec.shape, spec.dtype);
  const next = generator(seed, spec.key);
  const data = array.data;
  if (data instanceof Float32Array || data instanceof Float64Array) {
    const { center, spread } = floatRange(spec);
    for (let i = 0; i < data.length; i++) data[i] = center + spread * (next() * 2 ** -31 - 1);
    if (spec.dtype === "float16" || spec.dtype === "bfloat16") roundToHalf(data as Float32Array, spec.dtype);
  } else if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) data[i] = BigInt(next() % 10);
  } else {
    const modulus = spec.dtype === "bool" ? 2 : 10;
    for (let i = 0; i < data.length; i++) data[i] = next() % modulus;
  }
  return array;
}

/** Makes decoded half-precision values exact, as NdArray promises: nearest float16, or bfloat16 by truncation. */
function roundToHalf(data: Float32Array, dtype: "float16" | "bfloat16"): void {
  if (dtype === "float16") {
    for (let i = 0; i < data.length; i++) data[i] = roundFloat16(data[i]);
    return;
  }
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000;
}

function floatRange(spec: KeySpec): { center: number; spread: number } {
  if (spec.shape.length >= 2) return { center: 0, spread: 1 / Math.sqrt(Math.max(1, size(spec.shape.slice(1)))) };
  if (spec.shape.length === 1 && spec.key.endsWith(".weight")) return { center: 1, spread: 0.1 };
  return { center: 0, spread: 0.1 };
}

/**
 * A fast 32-bit generator (mulberry32) seeded from `seed` and an FNV-1a hash of the key: uniform
 * integers in [0, 2^32).
 */
function generator(seed: number, key: string): () => number {
  let hash = 0x811c9dc5 ^ (seed | 0) ^ Math.floor(seed / 2 ** 32);
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  let state = hash >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}
