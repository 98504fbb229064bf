#!/usr/bin/env node
/**
 * The `endosynth` command. Each subcommand lives in its own file and registers itself here;
 * commands call the library, never the reverse. Errors print as `endosynth: <message>` with exit
 * code 1; the stack trace too with `--debug` or `ENDOSYNTH_DEBUG=1`.
 * @module
 */
import { Command, CommanderError } from "commander";
import { registerConvertCommand } from "./convert.js";
import { registerEvalCommand } from "./eval.js";
import { registerExportCommand } from "./export.js";
import { registerInferCommand } from "./infer.js";
import { packageJson } from "../package_info.js";
import { registerInfoCommand } from "./info.js";
import { registerPullCommand } from "./pull.js";
import { registerLiveCommand } from "./live.js";
import { registerServeCommand } from "./serve.js";
import { registerVizCommand } from "./viz.js";

function wantsStack(argv: readonly string[]): boolean {
  return argv.includes("--debug") || process.env.ENDOSYNTH_DEBUG === "1";
}

/** Builds the program with every command registered (exported for tests and for later commands). */
export function createProgram(): Command {
  const program = new Command("endosynth")
    .description("Metric depth for endoscopic images with the EndoSynth models")
    .version(packageJson().version, "-V, --version", "print the package version")
    .option("--debug", "print stack traces with errors (or set ENDOSYNTH_DEBUG=1)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerPullCommand(program);
  registerInferCommand(program);
  registerConvertCommand(program);
  registerEvalCommand(program);
  registerExportCommand(program);
  registerVizCommand(program);
  registerServeCommand(program);
  registerLiveCommand(program);
  registerInfoCommand(program);
  return program;
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv as string[]);
    // A command that finished but found a failure (`info --check-tensorrt`) sets the code itself.
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    // Commander already printed its own usage errors, and help/version "errors" are successes.
    if (error instanceof CommanderError) return error.exitCode;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`endosynth: ${message}\n`);
    if (wantsStack(argv) && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
