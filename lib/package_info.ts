/**
 * Where the installed package is and what it says about itself. This file sits one folder below
 * the package root both as lib/package_info.ts and as dist/package_info.js.
 * @module
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (the folder of package.json). */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

let cached: { name: string; version: string } | undefined;

/** endosynth's own package.json: name and version. */
export function packageJson(): { name: string; version: string } {
  cached ??= JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { name: string; version: string };
  return cached;
}
