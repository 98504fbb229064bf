import type { ChildProcess } from "node:child_process";

/**
 * Waits until `ready()` holds while `child` runs; throws, with the child's stderr, if it exits
 * first (so a test fails at once instead of waiting for the runner's timeout).
 */
export async function whileRunningUntil(child: ChildProcess, ready: () => boolean, stderr: () => string): Promise<void> {
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the child exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
