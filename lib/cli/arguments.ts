/**
 * Parsers of option values shared by the commands: each turns the text into a number or says,
 * in commander's error format, what was expected.
 * @module
 */
import { InvalidArgumentError } from "commander";

/** An integer from 1 up. */
export function parsePositiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError("expected a positive integer");
  return number;
}

/** Any finite number. */
export function parseNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number)) throw new InvalidArgumentError("expected a number");
  return number;
}

/** A positive, finite number of metres. */
export function parsePositiveMetres(value: string): number {
  const number = Number(value);
  if (!(number > 0 && number < Infinity)) throw new InvalidArgumentError("expected a positive number of metres");
  return number;
}

/** `i/n`: the i-th of n shards, 1 <= i <= n. */
export function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || !(count >= 1) || !(index >= 1 && index <= count)) throw new InvalidArgumentError("expected i/n with 1 <= i <= n, e.g. 3/8");
  return { index, count };
}
