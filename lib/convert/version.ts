/**
 * The converter's version, derived from its own source: a SHA-256 over every module that decides
 * what ONNX a checkpoint turns into (checkpoint reading, the architectures and their blocks, graph
 * building and writing, the fp16 pass, array codecs, this folder). The ONNX cache keys on it, so a
 * release that changes any of them reconverts, and none can serve a stale graph because someone
 * forgot to bump a number. Comment-only edits also change it: a needless reconversion (seconds,
 * once) is the price of never trusting a stale one.
 * @module
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The folders, relative to the package's source root (lib/ or dist/), that make up the converter. */
export const CONVERTER_FOLDERS = ["checkpoint", "convert", "models", "ndarray", "onnx"] as const;

/** Compiled or source modules; declarations and maps do not change what runs. */
function isModule(name: string): boolean {
  return /\.(js|ts)$/.test(name) && !name.endsWith(".d.ts");
}

function modulesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && isModule(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * The version of the converter whose sources lie under `sourceRoot`: 16 hex digits of a SHA-256
 * over each module's path (relative, `/`-separated) and content, in path order.
 */
export function converterVersionOf(sourceRoot: string): string {
  const hash = createHash("sha256");
  const files = CONVERTER_FOLDERS.flatMap((folder) => modulesUnder(join(sourceRoot, folder)))
    .map((path) => ({ path, name: relative(sourceRoot, path).split(sep).join("/") }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { path, name } of files) hash.update(`${name}\0`).update(readFileSync(path)).update("\0");
  return hash.digest("hex").slice(0, 16);
}

let cached: string | undefined;

/** The running converter's version (computed once per process, ~2 ms). */
export function converterVersion(): string {
  cached ??= converterVersionOf(join(dirname(fileURLToPath(import.meta.url)), ".."));
  return cached;
}
