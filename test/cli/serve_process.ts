/** `endosynth serve` and `endosynth live` as child processes, for the CLI and viewer tests. */
import type { ExecutionContext } from "ava";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import { delimiter, dirname } from "node:path";
import { whileRunningUntil } from "../support/child_process.js";
import { cliEntry, tsxLoader } from "../support/cli.js";
import { repoRoot } from "../support/fixtures.js";

const require = createRequire(import.meta.url);
/** The ffmpeg and ffprobe binaries of the devDependencies (there may be none on PATH). */
export const ffmpegPath: string = require("@ffmpeg-installer/ffmpeg").path;
export const ffprobePath: string = require("@ffprobe-installer/ffprobe").path;

/** PATH with the devDependencies' ffmpeg and ffprobe first, for child processes. */
export function pathWithFfmpeg(): string {
  return [dirname(ffmpegPath), dirname(ffprobePath), process.env.PATH].join(delimiter);
}

/** Writes `frames` frames of ffmpeg's moving test pattern as a lossless video. */
export function testPatternVideo(path: string, { width, height, fps, frames }: { width: number; height: number; fps: number; frames: number }): void {
  execFileSync(ffmpegPath, ["-v", "error", "-y", "-f", "lavfi", "-i", `testsrc=size=${width}x${height}:rate=${fps}`, "-frames:v", String(frames), "-c:v", "ffv1", path]);
}

/** A running `endosynth serve|live ... --json`: its URL, and how to stop it. */
export interface ServeProcess {
  child: ChildProcess;
  /** What it printed as its one JSON line. */
  facts: { url: string; host: string; port: number; model: string; backend: string; precision: string };
  stderr: () => string;
  /** Sends `signal` and resolves with the exit code once it has exited. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts `endosynth <args> --port 0 --json` and waits until it prints where it listens. */
export async function startServeProcess(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, ["--import", tsxLoader, cliEntry, ...args, "--port", "0", "--json"], {
    cwd: repoRoot,
    env: { ...process.env, ENDOSYNTH_DEBUG: "", PATH: pathWithFfmpeg(), ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  await whileRunningUntil(child, () => stdout.includes("\n"), () => stderr);
  return {
    child,
    facts: JSON.parse(stdout.split("\n")[0]),
    stderr: () => stderr,
    stop: (signal = "SIGINT") => {
      child.kill(signal);
      return exited;
    },
  };
}
