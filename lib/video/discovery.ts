/**
 * Finding the ffmpeg and ffprobe programs, before any work starts, in this order:
 *
 * 1. an explicit path: `options.ffmpegPath` / `options.ffprobePath`, else the environment variables
 *    `ENDOSYNTH_FFMPEG` / `ENDOSYNTH_FFPROBE`;
 * 2. the npm packages `@ffmpeg-installer/ffmpeg` and `@ffprobe-installer/ffprobe` when installed
 *    (they carry static binaries inside the npm package, so they install offline from a registry
 *    mirror: the optional add-on for machines without ffmpeg);
 * 3. `ffmpeg` / `ffprobe` on `PATH`.
 *
 * ffprobe is optional: without one, videos are probed with ffmpeg alone. An ffprobe beside the
 * ffmpeg found (same folder) is preferred over one found elsewhere, so the pair matches.
 * @module
 */
import { accessSync, constants, statSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { BackendUnavailableError } from "../errors.js";
import { assertOptions, assertString } from "../is.js";

/** Where to find the programs (see the module's search order); each option overrides the search. */
export interface FfmpegOptions {
  /** The ffmpeg executable. Default: `$ENDOSYNTH_FFMPEG`, `@ffmpeg-installer/ffmpeg`, then `ffmpeg` on PATH. */
  ffmpegPath?: string;
  /** The ffprobe executable. Default: `$ENDOSYNTH_FFPROBE`, `@ffprobe-installer/ffprobe`, beside ffmpeg, then PATH; none: ffmpeg probes. */
  ffprobePath?: string;
}

/** Where a program was found. */
export type ProgramOrigin = "option" | "environment" | "package" | "path";

/** The programs a video call runs. */
export interface FfmpegPrograms {
  /** The ffmpeg executable. */
  ffmpeg: string;
  /** How `ffmpeg` was found. */
  ffmpegOrigin: ProgramOrigin;
  /** The ffprobe executable, when one was found; videos are probed with ffmpeg otherwise. */
  ffprobe?: string;
}

/**
 * What the search reads: this process's environment and the installed packages, or stand-ins.
 * @internal
 */
export interface ProgramSearch {
  /** Environment variables (ENDOSYNTH_FFMPEG, ENDOSYNTH_FFPROBE, PATH, PATHEXT). */
  env: NodeJS.ProcessEnv;
  /** The binary path an installer package gives, or undefined when it is not installed or not usable here. */
  packageBinary: (name: "@ffmpeg-installer/ffmpeg" | "@ffprobe-installer/ffprobe") => string | undefined;
}

/** @internal the option names of {@link FfmpegOptions}. */
export const FFMPEG_OPTION_KEYS = ["ffmpegPath", "ffprobePath"] as const;

const require = createRequire(import.meta.url);
const packageBinaries = new Map<string, string | undefined>();

/**
 * The installer packages export `{ path }`; they throw (sometimes a bare string) when they have no
 * binary for this platform. Resolved lazily, once, and only when no explicit path was given.
 */
function installedPackageBinary(name: string): string | undefined {
  if (!packageBinaries.has(name)) {
    let path: string | undefined;
    try {
      const exported = require(name) as { path?: unknown };
      if (typeof exported?.path === "string" && isExecutableFile(exported.path)) path = exported.path;
    } catch {
      path = undefined;
    }
    packageBinaries.set(name, path);
  }
  return packageBinaries.get(name);
}

const defaultSearch: ProgramSearch = { env: process.env, packageBinary: installedPackageBinary };

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` in the PATH folders (with the PATHEXT extensions on Windows). */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const extensions = process.platform === "win32" ? ["", ...(env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";")] : [""];
  for (const folder of (env.PATH ?? "").split(delimiter)) {
    if (folder === "") continue;
    for (const extension of extensions) {
      const candidate = join(folder, name + extension);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

const SEARCH_ORDER =
  "endosynth looks for it in this order: (1) the ffmpegPath option (--ffmpeg on the command line) or the ENDOSYNTH_FFMPEG environment variable; " +
  "(2) the npm packages @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe (`npm install @ffmpeg-installer/ffmpeg @ffprobe-installer/ffprobe`: static binaries inside the npm packages, installable offline from a registry mirror); " +
  "(3) ffmpeg on PATH (`apt-get install ffmpeg` on Debian/Ubuntu, `brew install ffmpeg` on macOS)";

/** An explicitly named program must exist: falling back silently would hide a misconfiguration. */
function explicitProgram(path: string, role: "ffmpeg" | "ffprobe", from: string): string {
  if (!isExecutableFile(path)) {
    throw new BackendUnavailableError(`${role} was not found at ${path} (from ${from}): no executable file there. ${SEARCH_ORDER}`);
  }
  return path;
}

function findFfmpeg(options: FfmpegOptions, search: ProgramSearch): { path: string; origin: ProgramOrigin } {
  if (options.ffmpegPath !== undefined) return { path: explicitProgram(options.ffmpegPath, "ffmpeg", "options.ffmpegPath"), origin: "option" };
  const fromEnvironment = search.env.ENDOSYNTH_FFMPEG;
  if (fromEnvironment) return { path: explicitProgram(fromEnvironment, "ffmpeg", "ENDOSYNTH_FFMPEG"), origin: "environment" };
  const fromPackage = search.packageBinary("@ffmpeg-installer/ffmpeg");
  if (fromPackage) return { path: fromPackage, origin: "package" };
  const fromPath = onPath("ffmpeg", search.env);
  if (fromPath) return { path: fromPath, origin: "path" };
  throw new BackendUnavailableError(`ffmpeg was not found: ${SEARCH_ORDER}`);
}

function findFfprobe(options: FfmpegOptions, search: ProgramSearch, ffmpeg: string): string | undefined {
  if (options.ffprobePath !== undefined) return explicitProgram(options.ffprobePath, "ffprobe", "options.ffprobePath");
  const fromEnvironment = search.env.ENDOSYNTH_FFPROBE;
  if (fromEnvironment) return explicitProgram(fromEnvironment, "ffprobe", "ENDOSYNTH_FFPROBE");
  const beside = join(dirname(ffmpeg), `ffprobe${process.platform === "win32" ? ".exe" : ""}`);
  if (isExecutableFile(beside)) return beside;
  return search.packageBinary("@ffprobe-installer/ffprobe") ?? onPath("ffprobe", search.env);
}

/** Checks the FfmpegOptions part of an options object. */
export function assertFfmpegOptions(options: FfmpegOptions | undefined): void {
  if (options?.ffmpegPath !== undefined) assertString("options.ffmpegPath", options.ffmpegPath);
  if (options?.ffprobePath !== undefined) assertString("options.ffprobePath", options.ffprobePath);
}

/**
 * Finds ffmpeg (required) and ffprobe (optional), synchronously, so a video call fails before it
 * does any work.
 *
 * @example
 * ```ts
 * const { ffmpeg, ffmpegOrigin, ffprobe } = findFfmpegPrograms();
 * console.log(`${ffmpeg} (${ffmpegOrigin}), probing with ${ffprobe ?? "ffmpeg"}`);
 * ```
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when no ffmpeg is found (the message names the three ways to
 * provide one), or an explicitly named program (option or environment variable) does not exist.
 */
export function findFfmpegPrograms(options?: FfmpegOptions): FfmpegPrograms {
  assertOptions("options", options as unknown, FFMPEG_OPTION_KEYS);
  return searchFfmpegPrograms(options, defaultSearch);
}

/**
 * {@link findFfmpegPrograms} over a given environment and package lookup.
 * @internal
 */
export function searchFfmpegPrograms(options: FfmpegOptions | undefined, search: ProgramSearch): FfmpegPrograms {
  assertFfmpegOptions(options);
  const ffmpeg = findFfmpeg(options ?? {}, search);
  const ffprobe = findFfprobe(options ?? {}, search, ffmpeg.path);
  return ffprobe === undefined ? { ffmpeg: ffmpeg.path, ffmpegOrigin: ffmpeg.origin } : { ffmpeg: ffmpeg.path, ffmpegOrigin: ffmpeg.origin, ffprobe };
}

/** The FfmpegOptions part of a wider options object. */
export function programOptions(options: FfmpegOptions | undefined): FfmpegOptions {
  const programs: FfmpegOptions = {};
  if (options?.ffmpegPath !== undefined) programs.ffmpegPath = options.ffmpegPath;
  if (options?.ffprobePath !== undefined) programs.ffprobePath = options.ffprobePath;
  return programs;
}
