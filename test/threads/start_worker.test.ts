import test from "ava";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../support/fixtures.js";
import { tsxLoader } from "../support/cli.js";

const run = promisify(execFile);

/** Starts a compiled (.mjs) worker the way the package starts its own, and prints what it says. */
const WORKER_SCRIPT = `const { startWorker } = await import(${JSON.stringify(join(repoRoot, "lib", "threads", "start_worker.ts"))});
const worker = startWorker(new URL(${JSON.stringify(`file://${join(repoRoot, "test", "support", "children", "ready_worker.mjs")}`)}));
worker.on("message", (message) => { console.log(message); worker.terminate(); });
worker.on("error", (error) => { console.error(error.message); process.exit(1); });`;

for (const [label, flags] of [
  ["--input-type=module --eval", ["--input-type=module", "--eval"]],
  ["another --import and --input-type=module -e", ["--import", "data:text/javascript,globalThis.loaderRan=1", "--input-type=module", "-e"]],
] as const) {
  test(`a package worker starts in a process started with ${label}: it does not inherit those flags`, async (t) => {
    const { stdout } = await run(process.execPath, ["--import", tsxLoader, ...flags, WORKER_SCRIPT]);
    t.is(stdout.trim(), "ready");
  });
}
