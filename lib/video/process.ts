/**
 * Running ffmpeg and ffprobe as child processes: start, exit status, and what they print on
 * stderr, for error messages.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { BackendUnavailableError } from "../errors.js";

/** How a child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** "exited with code 1" / "was killed by SIGKILL". */
export function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Runs a program found by the discovery, resolving once it has started. It was checked to exist,
 * so a failure here means it cannot run on this machine (wrong architecture, no permission).
 */
export async function start(program: string, args: readonly string[], stdin: "pipe" | "ignore" = "ignore"): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: [stdin, "pipe", "pipe"], windowsHide: true });
  try {
    await once(child, "spawn");
  } catch (error) {
    throw new BackendUnavailableError(`${program} could not be run: ${(error as Error).message}`, { cause: error });
  }
  return child;
}

/** Resolves when the child has exited and its pipes are closed. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
}

const STDERR_LINES_KEPT = 12;

/** The last lines a process wrote to stderr, for error messages. */
export class StderrTail {
  #text = "";

  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.setEncoding?.("utf8");
    stream?.on("data", (chunk: string) => {
      this.#text = (this.#text + chunk).slice(-8192);
    });
  }

  toString(): string {
    return this.#text.trim().split("\n").slice(-STDERR_LINES_KEPT).join("\n");
  }
}

/** Runs a program to completion, collecting stdout and stderr (both small). */
export async function runToEnd(program: string, args: readonly string[]): Promise<{ exit: Exit; stdout: string; stderr: string }> {
  const child = await start(program, args);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-65536)));
  const exit = await exitOf(child);
  return { exit, stdout, stderr };
}

/** The spellings of the options whose names changed across ffmpeg versions. */
export interface FfmpegDialect {
  /** Keep every frame with its own timestamp: `-fps_mode passthrough` from ffmpeg 6 on, `-vsync passthrough` before (deprecated since 5.1). */
  passthrough: string[];
  /** Encode in the input's time base: `-enc_time_base demux` (7+), `-enc_time_base -1` before. */
  inputTimeBase: string[];
}

const dialects = new Map<string, Promise<FfmpegDialect>>();

/**
 * The dialect of an ffmpeg, from its libavformat major version (58: ffmpeg 4, 59: 5, 60: 6, 61: 7;
 * release builds and git snapshots alike print it), asked once per program.
 */
export function ffmpegDialect(ffmpeg: string): Promise<FfmpegDialect> {
  let dialect = dialects.get(ffmpeg);
  if (!dialect) {
    dialect = runToEnd(ffmpeg, ["-hide_banner", "-version"]).then(({ stdout }) => {
      const major = Number(/^libavformat\s+(\d+)\./m.exec(stdout)?.[1] ?? 58);
      return {
        passthrough: major >= 60 ? ["-fps_mode", "passthrough"] : ["-vsync", "passthrough"],
        inputTimeBase: ["-enc_time_base", major >= 61 ? "demux" : "-1"],
      };
    });
    dialects.set(ffmpeg, dialect);
  }
  return dialect;
}
