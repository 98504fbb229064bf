/**
 * Synchronous argument checks shared by every public function, in the style of sharp's `is`:
 * each check either passes or throws an {@link InputError} reading
 * "Expected <what> for <name> but received <value>".
 * @module
 */
import { InputError } from "./errors.js";

/** Short, bounded description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as Uint8Array).length}`;
  const name = (value as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an object";
}

/** The error every check throws: "Expected X for Y but received Z". */
export function invalidParameter(name: string, expected: string, actual: unknown): InputError {
  return new InputError(`Expected ${expected} for ${name} but received ${describe(actual)}`, { key: name });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

export function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

export function assertString(name: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || value.length === 0) throw invalidParameter(name, "a non-empty string", value);
}

export function assertFiniteNumber(name: string, value: unknown): asserts value is number {
  if (!isFiniteNumber(value)) throw invalidParameter(name, "a finite number", value);
}

export function assertIntegerInRange(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (!isInteger(value) || value < min || value > max) {
    throw invalidParameter(name, `an integer between ${min} and ${max}`, value);
  }
}

export function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== "boolean") throw invalidParameter(name, "a boolean", value);
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw invalidParameter(name, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, value);
  }
}

export function assertFunction(name: string, value: unknown): asserts value is (...args: never[]) => unknown {
  if (typeof value !== "function") throw invalidParameter(name, "a function", value);
}

export function assertAbortSignal(name: string, value: unknown): asserts value is AbortSignal {
  if (!(value instanceof AbortSignal)) throw invalidParameter(name, "an AbortSignal", value);
}

export function assertPlainObject(name: string, value: unknown): asserts value is Record<string, unknown> {
  if (!isPlainObject(value)) throw invalidParameter(name, "an object", value);
}

/** Checks an options object: must be undefined or a plain object with only the known keys. */
export function assertOptions(name: string, value: unknown, known: readonly string[]): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  assertPlainObject(name, value);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new InputError(`Unknown option ${JSON.stringify(key)} in ${name}; known options are ${known.join(", ")}`, { key });
    }
  }
}
