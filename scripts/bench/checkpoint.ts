/**
 * Checkpoint reading benchmark (`npm run bench -- checkpoint`): full-size random checkpoints with
 * exactly the keys of keys_full.json (Depth Anything v1, 390 MB; MiDaS, 1.4 GB), written by the
 * streaming pth writer during setup, then read back with readStateDict. Each read is compared with
 * torch.load's time on the same MiDaS file on this machine (0.82 s, measured by hand once; the
 * bench itself needs no Python). Peak RSS is the process's: reading should cost ~1x the file.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writePth } from "../../test/support/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../../test/support/random_state_dict.js";
import { readStateDict } from "../../lib/checkpoint/state_dict.js";
import type { BenchCase, Suite } from "./harness.js";

const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(fileURLToPath(import.meta.url), "../../../../shared/fixtures"));
const TORCH_LOAD_MIDAS_MS = 820;

let workDir: string | undefined;

function writeRandom(arch: string, dir: string): { path: string; megabytes: number; seconds: number } {
  const keys = JSON.parse(readFileSync(join(fixtures, arch, "keys_full.json"), "utf8")) as KeysJson;
  const path = join(dir, `${arch}-random.pth`);
  const start = performance.now();
  writePth(path, randomStateDictFromKeys(keys, 1));
  return { path, megabytes: statSync(path).size / 1e6, seconds: (performance.now() - start) / 1000 };
}

/** The `checkpoint` suite. */
export const checkpointSuite: Suite = {
  description: "readStateDict on full-size random checkpoints (keys_full.json): dav1 390 MB, midas 1.4 GB, page cache warm",
  setup: () => {
    workDir = mkdtempSync(join(tmpdir(), "endosynth-bench-checkpoint-"));
    const cases: BenchCase[] = [];
    for (const arch of ["dav1", "midas"]) {
      const file = writeRandom(arch, workDir);
      console.log(`${arch}: wrote a ${file.megabytes.toFixed(0)} MB checkpoint in ${file.seconds.toFixed(1)} s (streamed, one tensor in memory at a time)`);
      cases.push({
        name: `readStateDict ${arch} (${file.megabytes.toFixed(0)} MB)`,
        run: () => readStateDict(file.path),
        ...(arch === "midas" ? { compare: { kind: "yardstick" as const, ms: TORCH_LOAD_MIDAS_MS, label: "torch.load" } } : {}),
      });
    }
    return cases;
  },
  cleanup: () => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  },
};
