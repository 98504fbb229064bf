/** Runs the `endosynth` CLI as users do: a child process on the TypeScript entry point (via tsx). */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { repoRoot } from "./fixtures.js";

const run = promisify(execFile);
/** tsx's loader, for `node --import <it>` in child processes. */
export const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
/** The CLI's TypeScript entry point. */
export const cliEntry = join(repoRoot, "lib", "cli", "main.ts");

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `endosynth <args>` from `cwd` (default: the repository) and collects its output. */
export async function endosynth(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", tsxLoader, cliEntry, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ENDOSYNTH_DEBUG: "", ...options.env },
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}
