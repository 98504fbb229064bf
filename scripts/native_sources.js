// The SHA-256 of everything that decides what the native addon compiles to: its C++ sources, the
// source list and both build files. A committed prebuilt addon records the hash it was built from,
// so a test can tell when the C++ has changed since and the binary must be rebuilt.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";

/** Hex SHA-256 over the addon's sources under `root`, in path order. */
export function nativeSourcesHash(root) {
  const files = [
    ...readdirSync(join(root, "native", "src")).map((name) => join(root, "native", "src", name)),
    join(root, "native", "sources.json"),
    join(root, "native", "locate_toolkits.cjs"),
    join(root, "binding.gyp"),
  ]
    .map((path) => ({ path, name: relative(root, path).split(sep).join("/") }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file.name}\0`).update(readFileSync(file.path)).update("\0");
  return hash.digest("hex");
}
