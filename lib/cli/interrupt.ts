/**
 * Ctrl-C in long commands: the first asks the work in progress to stop cleanly (through an
 * AbortSignal, so files are finished or removed, never left half-written), a second quits at once.
 * The command then ends with exit code 130, as shells expect of an interrupted program.
 * @module
 */
import { CommanderError } from "commander";

/** The exit code of a program ended by SIGINT (128 + 2). */
export const INTERRUPTED_EXIT_CODE = 130;

/**
 * Aborts `controller` on the first Ctrl-C, after `say(notice)`; exits at once on the second.
 * @returns the function that stops listening (call it in a `finally`).
 */
export function abortOnInterrupt(controller: AbortController, notice: string, say: (text: string) => void): () => void {
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(INTERRUPTED_EXIT_CODE);
    say(notice);
    controller.abort();
  };
  process.on("SIGINT", onInterrupt);
  return () => process.off("SIGINT", onInterrupt);
}

/** The error that ends the CLI with exit code 130 without printing anything more. */
export function interrupted(message: string): CommanderError {
  return new CommanderError(INTERRUPTED_EXIT_CODE, "endosynth.interrupted", message);
}
