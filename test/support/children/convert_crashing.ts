/**
 * A child process that dies at a chosen instant: `convert_crashing.ts <k> <model> <checkpoint>
 * <output> <precision>` converts in this thread and kills itself with SIGKILL just before its k-th change to
 * the file system (a rename, removal, link or exclusive create), the way a power cut or the OOM
 * killer would stop it there. With k beyond the last change it finishes and prints the count, so a
 * test can try every crash point of a conversion in turn.
 */
import fs from "node:fs";
import fsPromises from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { convertInThisThread } from "../../../lib/convert/in_this_thread.js";
import type { ModelName } from "../../../lib/models/registry.js";
import type { Precision } from "../../../lib/convert/options.js";

const [crashAt, model, checkpoint, output, precision] = process.argv.slice(2);
let changes = 0;

function beforeChange(): void {
  changes++;
  if (changes === Number(crashAt)) process.kill(process.pid, "SIGKILL");
}

type Patchable = Record<string, unknown>;
function intercept(module: Patchable, name: string, isChange: (args: unknown[]) => boolean = () => true): void {
  const original = module[name] as (...args: unknown[]) => unknown;
  module[name] = (...args: unknown[]) => {
    if (isChange(args)) beforeChange();
    return original.apply(module, args);
  };
}

const exclusive = (args: unknown[]): boolean => typeof args[1] === "string" && args[1].includes("x");
for (const name of ["renameSync", "rmSync", "unlinkSync", "linkSync", "mkdirSync"]) intercept(fs as unknown as Patchable, name);
intercept(fs as unknown as Patchable, "openSync", exclusive);
for (const name of ["rename", "rm", "unlink", "link", "mkdir"]) intercept(fsPromises as unknown as Patchable, name);
intercept(fsPromises as unknown as Patchable, "open", exclusive);
syncBuiltinESMExports();

await convertInThisThread({ model: model as ModelName, checkpoint: checkpoint!, output: output!, channelOrder: "rgb", precision: precision as Precision });
process.stdout.write(`${changes}\n`);
