/**
 * Where the reference fixtures live: `../shared/fixtures` beside the repository (as in CI), or
 * `ENDOSYNTH_FIXTURES`. A missing folder fails the tests loudly; nothing is skipped.
 */
import { existsSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const fixturesRoot = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(repoRoot, "../shared/fixtures"));

/** Absolute path of a fixture file; throws if the fixtures folder or the file is missing. */
export function fixture(...parts: string[]): string {
  if (!existsSync(fixturesRoot)) {
    throw new Error(
      `Reference fixtures not found at ${fixturesRoot}: clone the repository beside ../shared or set ENDOSYNTH_FIXTURES`,
    );
  }
  const path = join(fixturesRoot, ...parts);
  if (!existsSync(path)) throw new Error(`Fixture ${path} is missing`);
  return path;
}

/** A fresh temporary directory, removed when the returned cleanup runs (register it with t.teardown). */
export function temporaryDirectory(prefix = "endosynth-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A temporary folder that is removed when the test ends. */
export function testFolder(t: { teardown(fn: () => void): void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}
