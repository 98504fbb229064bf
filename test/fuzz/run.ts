/**
 * The fuzzing loop: mutates (or generates) inputs for a target from a seed, runs its reader, and
 * collects every case that breaks the contract: an error that is not an EndosynthError, a result
 * that is not right for the format's integrity, or a case slower than the hang guard.
 */
import { isDeepStrictEqual } from "node:util";
import { EndosynthError } from "../../lib/errors.js";
import { mutate, Random } from "./mutate.js";
import type { Digest, FuzzTarget } from "./targets.js";

/** A case over this many milliseconds counts as a hang (parsers run in microseconds to milliseconds). */
export const CASE_TIME_LIMIT_MS = 5000;

export interface FuzzFailure {
  target: string;
  seed: number;
  index: number;
  /** How the input was made. */
  description: string;
  /** What was wrong. */
  problem: string;
  bytes: Uint8Array;
}

export interface FuzzReport {
  target: string;
  cases: number;
  /** Cases the reader refused with an EndosynthError. */
  refused: number;
  /** Cases the reader read (rightly, unless listed in failures). */
  read: number;
  failures: FuzzFailure[];
  slowestMs: number;
}

export interface FuzzOptions {
  seed: number;
  /** Stop after this many cases... */
  cases?: number;
  /** ...or at this time (Date.now()). */
  until?: number;
}

/** The seed of one case, so any case can be replayed alone. */
function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index, 0xc2b2ae35)) >>> 0;
}

interface Original {
  bytes: Uint8Array;
  digest: Digest;
}

/** Whether a result for a damaged file is right, given the original's (undefined for generated input). */
function judge(target: FuzzTarget, result: Digest, original: Original | undefined): string | undefined {
  if (original === undefined || target.integrity === "consistent") return undefined;
  if (target.integrity === "exact") return isDeepStrictEqual(result, original.digest) ? undefined : "read, but not to the original's data";
  const known = new Set(original.digest as string[]);
  const unknown = (result as string[]).filter((item) => !known.has(item));
  return unknown.length === 0 ? undefined : `read members the original does not hold: ${unknown.slice(0, 3).join(", ")}`;
}

/** The input of case `index`: its bytes, how it was made, and the original it came from. */
export function makeCase(target: FuzzTarget, corpus: readonly Original[], seed: number, index: number): { bytes: Uint8Array; description: string; original?: Original } {
  const random = new Random(caseSeed(seed, index));
  if (target.generate && random.next() < 0.3) return { bytes: target.generate(random), description: "generated" };
  const which = random.below(corpus.length);
  const original = corpus[which];
  let bytes = original.bytes;
  const steps: string[] = [];
  for (let n = random.small(3); n > 0 && bytes.length > 0; n--) {
    const mutation = mutate(random, bytes);
    bytes = mutation.bytes;
    steps.push(mutation.description);
  }
  return { bytes, description: `corpus[${which}]: ${steps.join("; ")}`, original };
}

/** The corpus with the digest of each file: every file of it must read. */
export async function prepare(target: FuzzTarget): Promise<Original[]> {
  const files = await target.corpus();
  return Promise.all(files.map(async (bytes) => ({ bytes, digest: await target.read(bytes) })));
}

/** Runs cases until `options.cases` or `options.until`. */
export async function fuzz(target: FuzzTarget, corpus: readonly Original[], options: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = { target: target.name, cases: 0, refused: 0, read: 0, failures: [], slowestMs: 0 };
  for (let index = 0; ; index++) {
    if (options.cases !== undefined && index >= options.cases) break;
    if (options.until !== undefined && Date.now() >= options.until) break;
    const { bytes, description, original } = makeCase(target, corpus, options.seed, index);
    const fail = (problem: string) => report.failures.push({ target: target.name, seed: options.seed, index, description, problem, bytes });
    const start = performance.now();
    try {
      const result = await target.read(bytes);
      report.read++;
      const problem = judge(target, result, original);
      if (problem) fail(problem);
    } catch (error) {
      if (error instanceof EndosynthError) report.refused++;
      else fail(`untyped ${(error as Error)?.name ?? typeof error}: ${(error as Error)?.message ?? String(error)}`);
    }
    const elapsed = performance.now() - start;
    report.slowestMs = Math.max(report.slowestMs, elapsed);
    if (elapsed > CASE_TIME_LIMIT_MS) fail(`took ${Math.round(elapsed)} ms`);
    report.cases++;
  }
  return report;
}
