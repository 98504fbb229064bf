/**
 * The state dict as the graph builders see it: every tensor is taken by key with the shape the
 * architecture expects, and every key must end up either consumed by the graph or skipped with a
 * reason. Problems are collected rather than thrown one at a time, so a bad checkpoint is reported
 * in one error naming every missing key, every wrong shape and every unexpected key.
 * @module
 */
import { CheckpointError } from "../errors.js";
import { decodeBfloat16, decodeFloat16 } from "../ndarray/float16.js";
import { formatShape, type NdArray } from "../ndarray/ndarray.js";
import type { Graph, Value } from "../onnx/graph.js";

/** A state dict: tensors by key, as `readStateDict` returns it. */
export type StateDictLike = ReadonlyMap<string, NdArray>;

/** A key deliberately left out of the graph, and why. */
export interface UnusedKey {
  /** The state-dict key, e.g. `"pretrained.mask_token"`. */
  key: string;
  /** Why inference does not need it, as a sentence. */
  reason: string;
}

/** What a finished build consumed (see {@link Weights.finish}). */
export interface WeightsUsage {
  /** Keys the graph uses, in state-dict order. */
  consumed: string[];
  /** Keys the model has but inference does not use, with the reason. */
  unused: UnusedKey[];
  /** Elements in the consumed tensors. */
  parameters: number;
}

/** How many names an error message lists before summarising the rest. */
const LISTED_NAMES = 12;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LISTED_NAMES).join(", ");
  return names.length > LISTED_NAMES ? `${shown} (and ${names.length - LISTED_NAMES} more)` : shown;
}

/** Float32 values of a floating-point tensor, without a copy where they already are. */
function asFloat32(array: NdArray): NdArray<"float32"> | undefined {
  const { data, shape, dtype } = array;
  if (dtype === "float32") return array as NdArray<"float32">;
  if (dtype === "float16" || dtype === "bfloat16") {
    // Decoded half-precision values are exact in float32: only the label changes.
    if (data instanceof Float32Array) return { data, shape, dtype: "float32" };
    const decoded = dtype === "float16" ? decodeFloat16(data as Uint16Array) : decodeBfloat16(data as Uint16Array);
    return { data: decoded, shape, dtype: "float32" };
  }
  if (dtype === "float64") return { data: Float32Array.from(data as Float64Array), shape, dtype: "float32" };
  return undefined;
}

/** Tracks a build's use of a state dict. */
export class Weights {
  readonly #stateDict: StateDictLike;
  readonly #file: string | undefined;
  readonly #consumed = new Set<string>();
  readonly #unused = new Map<string, string>();
  readonly #missing: string[] = [];
  readonly #problems: { key: string; message: string }[] = [];
  readonly #values = new Map<string, Value>();

  /** @param file the checkpoint's path, for error messages. */
  constructor(stateDict: StateDictLike, file?: string) {
    this.#stateDict = stateDict;
    this.#file = file;
  }

  /** Whether the state dict has `key`. */
  has(key: string): boolean {
    return this.#stateDict.has(key);
  }

  /** Every key of the state dict, in its order. */
  keys(): string[] {
    return [...this.#stateDict.keys()];
  }

  /** The shape stored under `key`, if any (does not consume it). */
  shapeOf(key: string): readonly number[] | undefined {
    return this.#stateDict.get(key)?.shape;
  }

  /**
   * The shape under `key`, which must have `rank` dimensions: how builders read an architecture's
   * sizes from the checkpoint. Throws at once, since nothing can be built without them.
   * @param part what is being read, for the message: `"a DINOv2 encoder"`.
   */
  dimensions(key: string, rank: number, part: string): readonly number[] {
    const shape = this.shapeOf(key);
    if (!shape || shape.length !== rank) {
      const found = shape ? `shape ${formatShape(shape)}` : "no such key";
      throw new CheckpointError(`The checkpoint cannot be read as ${part}: ${key} should have rank ${rank} (found ${found})`, { key });
    }
    return shape;
  }

  /** How many transformer blocks `<prefix>blocks.<i>.` the state dict holds. */
  countBlocks(prefix: string): number {
    const pattern = new RegExp(`^${prefix.replace(/\./g, "\\.")}blocks\\.(\\d+)\\.`);
    let count = 0;
    for (const key of this.#stateDict.keys()) {
      const match = pattern.exec(key);
      if (match) count = Math.max(count, Number(match[1]) + 1);
    }
    return count;
  }

  /**
   * The tensor under `key` as float32, checked against `shape` and marked consumed. A missing or
   * misshapen tensor is recorded (reported by {@link finish}) and a placeholder of the expected
   * shape is returned, so the build can go on and find every other problem too.
   */
  tensor(key: string, shape: readonly number[]): NdArray<"float32"> {
    const placeholder: NdArray<"float32"> = { data: new Float32Array(0), shape: [...shape], dtype: "float32" };
    const array = this.#stateDict.get(key);
    if (!array) {
      if (!this.#missing.includes(key)) this.#missing.push(key);
      return placeholder;
    }
    this.#consumed.add(key);
    if (array.shape.length !== shape.length || array.shape.some((d, i) => d !== shape[i])) {
      this.#problems.push({ key, message: `${key} has shape ${formatShape(array.shape)} but the model needs ${formatShape(shape)}` });
      return placeholder;
    }
    const values = asFloat32(array);
    if (!values) {
      this.#problems.push({ key, message: `${key} has dtype ${array.dtype} but the model needs floating-point weights` });
      return placeholder;
    }
    return values;
  }

  /** The tensor under `key` as a graph initializer named after the key (one initializer per key). */
  value(g: Graph, key: string, shape: readonly number[]): Value {
    const existing = this.#values.get(key);
    if (existing) return existing;
    const value = g.initializer(this.tensor(key, shape), key);
    this.#values.set(key, value);
    return value;
  }

  /**
   * Rows `[start, end)` of the tensor under `key` (first axis) as an initializer: a view, not a
   * copy. Used to split fused weights such as a ViT's `qkv` into three matrices.
   */
  rows(g: Graph, key: string, shape: readonly number[], start: number, end: number): Value {
    const whole = this.tensor(key, shape);
    const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
    const data = whole.data.length === 0 ? whole.data : whole.data.subarray(start * rowSize, end * rowSize);
    return g.initializer({ data, shape: [end - start, ...shape.slice(1)], dtype: "float32" }, `${key}[${start}:${end}]`);
  }

  /**
   * Keys neither consumed nor skipped so far, in state-dict order: for models whose reference
   * loader drops checkpoint keys the model does not have, so the builder can report them.
   */
  unaccountedKeys(): string[] {
    return this.keys().filter((key) => !this.#consumed.has(key) && !this.#unused.has(key));
  }

  /** Marks `key` as present in the model but deliberately not used by inference. */
  skip(key: string, reason: string): void {
    if (!this.#stateDict.has(key)) this.#missing.push(key);
    else this.#unused.set(key, reason);
  }

  /**
   * Ends the build: every key must have been consumed or skipped.
   * @throws {@link endosynth!CheckpointError | CheckpointError} naming every missing key, wrong shape or dtype, and unexpected key.
   */
  finish(): WeightsUsage {
    const unexpected = this.unaccountedKeys();
    const parts: string[] = [];
    if (this.#missing.length > 0) parts.push(`${this.#missing.length} missing key(s): ${listNames(this.#missing)}`);
    if (this.#problems.length > 0) parts.push(`${this.#problems.length} wrong tensor(s): ${listNames(this.#problems.map((p) => p.message))}`);
    if (unexpected.length > 0) parts.push(`${unexpected.length} unexpected key(s): ${listNames(unexpected)}`);
    if (parts.length > 0) {
      const where = this.#file ? `The checkpoint ${this.#file}` : "The state dict";
      const key = this.#missing[0] ?? this.#problems[0]?.key ?? unexpected[0];
      throw new CheckpointError(`${where} does not fit the model: ${parts.join("; ")}`, { file: this.#file, key });
    }
    const consumed = this.keys().filter((key) => this.#consumed.has(key));
    const parameters = consumed.reduce((sum, key) => sum + this.#stateDict.get(key)!.data.length, 0);
    return { consumed, unused: [...this.#unused].map(([key, reason]) => ({ key, reason })), parameters };
  }
}
