/**
 * The output conventions every command follows, in one place:
 *
 * - `--json`: the command's result as one JSON document on stdout, and nothing else there; logs
 *   and progress go to stderr. ({@link CommandOutput.result})
 * - `-q, --quiet`: no progress and no informational logs; warnings and errors still print.
 * - `--overwrite`: required to replace any existing output or report file. Without it a command
 *   fails before doing any work, naming the file and the flag. ({@link refuseToOverwrite})
 * - Progress (progress.ts): a bar on a terminal; elsewhere plain lines, at most every few seconds,
 *   and always a final line; no ETA until it means something.
 *
 * A command adds the flags with {@link addOutputOptions} and prints through a
 * {@link CommandOutput}:
 * ```ts
 * addOutputOptions(program.command("thing"), { json: true })
 *   .action(async (options: OutputOptions) => {
 *     refuseToOverwrite([options.output], options.overwrite);
 *     const out = new CommandOutput(options);
 *     out.info("working");
 *     out.result(`wrote ${options.output}\n`, { output: options.output });
 *   });
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { InputError } from "../errors.js";

/** The flags of {@link addOutputOptions}, as commander parses them. */
export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  overwrite?: boolean;
}

/**
 * Adds `-q, --quiet` and `--overwrite` to a command, and `--json` when it has a machine-readable
 * result. `overwriteHelp` says what `--overwrite` replaces.
 */
export function addOutputOptions<C extends Command>(command: C, options: { json?: boolean; overwriteHelp?: string } = {}): C {
  if (options.json) command.option("--json", "print the result as JSON on stdout (logs stay on stderr)");
  command.option("-q, --quiet", "no progress or informational messages (warnings and errors still print)");
  command.option("--overwrite", options.overwriteHelp ?? "replace output files that already exist");
  return command;
}

/**
 * Refuses to replace existing files without `--overwrite`: call it before doing any work.
 * @throws {@link endosynth!InputError | InputError} naming the first existing file and the flag.
 */
export function refuseToOverwrite(paths: readonly (string | undefined)[], overwrite: boolean | undefined): void {
  if (overwrite) return;
  const existing = paths.find((path) => path !== undefined && existsSync(path));
  if (existing !== undefined) throw new InputError(`${existing} already exists: pass --overwrite to replace it`, { file: existing });
}

/** Where a command's messages and result go, per the conventions above. */
export class CommandOutput {
  readonly #json: boolean;
  readonly #quiet: boolean;

  constructor(options: OutputOptions) {
    this.#json = options.json ?? false;
    this.#quiet = options.quiet ?? false;
  }

  /** Whether progress and informational messages are wanted. */
  get quiet(): boolean {
    return this.#quiet;
  }

  /** An informational line on stderr, unless quiet. */
  info(text: string): void {
    if (!this.#quiet) process.stderr.write(`${text}\n`);
  }

  /** A warning line on stderr, even when quiet. */
  warn(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  /** The result: `json` as one JSON document with `--json`, else `text` (printed as is) on stdout. */
  result(text: string, json: unknown): void {
    process.stdout.write(this.#json ? `${JSON.stringify(json, jsonNumbers, 2)}\n` : text);
  }
}

/** JSON has no NaN or infinities: NaN becomes null, infinities their names. */
function jsonNumbers(_key: string, value: unknown): unknown {
  if (typeof value !== "number" || Number.isFinite(value)) return value;
  return Number.isNaN(value) ? null : String(value);
}
