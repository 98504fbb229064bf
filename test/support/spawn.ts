/** Child processes of the crash and concurrency tests, run from the TypeScript sources with tsx. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./fixtures.js";
import { tsxLoader } from "./cli.js";

/** A running child: the process, its output so far, and a promise of its exit. */
export interface RunningChild {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `test/support/children/<name>.ts` with `args`. */
export function startChild(name: string, args: readonly string[]): RunningChild {
  const child = spawn(process.execPath, ["--import", tsxLoader, join(repoRoot, "test", "support", "children", `${name}.ts`), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, exited };
}

/** A deterministic pseudo-random sequence in [0, 1) (mulberry32), so a failing kill schedule can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
