/**
 * Start-up benchmark (`npm run bench -- load`): `load()` of each full-size model (random weights
 * with exactly the keys of fixtures/<model>/keys_full.json) on ONNX Runtime, each run in a fresh
 * process as an application starting up, timing the `load()` call alone (not Node's start).
 *
 * - cold: an empty cache: the checkpoint is hashed and converted, ONNX Runtime optimizes the graph;
 * - warm: the cache of an earlier run: nothing is hashed again (file stamps), ONNX Runtime opens the
 *   optimized graph it kept. Goal: <= 0.3 s for every model on the 2-core development machine.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { load } from "../../lib/model.js";
import { modelSpec, type ModelName } from "../../lib/models/registry.js";
import { writeRandomCheckpoint } from "./convert.js";
import type { BenchCase, Measured, Suite } from "./harness.js";

const self = fileURLToPath(import.meta.url);
const MODELS: readonly ModelName[] = ["dav1", "dav2", "endodac", "midas"];

/** The child: one load() into `cacheDir`, its duration printed in ms. */
async function loadInChild(model: ModelName, checkpoint: string, cacheDir: string): Promise<void> {
  const started = performance.now();
  const loaded = await load(model, { checkpoint, cacheDir, backend: "onnxruntime" });
  const ms = performance.now() - started;
  await loaded.dispose();
  process.stdout.write(String(ms));
}

function loadInFreshProcess(model: ModelName, checkpoint: string, cacheDir: string): Measured {
  const stdout = execFileSync(process.execPath, [...process.execArgv, self, "--child", model, checkpoint, cacheDir], { encoding: "utf8" });
  return { measuredMs: Number(stdout) };
}

let workDir: string | undefined;

/** The `load` suite. */
export const loadSuite: Suite = {
  description: `load() of full-size ${MODELS.join(", ")} on ONNX Runtime in a fresh process: cold (empty cache) and warm (cache kept)`,
  setup: () => {
    workDir = mkdtempSync(join(tmpdir(), "endosynth-bench-load-"));
    const cases: BenchCase[] = [];
    for (const model of MODELS) {
      const checkpoint = join(workDir, modelSpec(model).checkpointFile);
      writeRandomCheckpoint(model, checkpoint);
      const warmCache = join(workDir, `cache-${model}`);
      let coldRun = 0;
      cases.push({
        name: `cold load ${model}: hash, convert, optimize`,
        run: () => {
          const cache = join(workDir!, `cold-${model}-${coldRun++}`);
          try {
            return loadInFreshProcess(model, checkpoint, cache);
          } finally {
            rmSync(cache, { recursive: true, force: true });
          }
        },
      });
      // Filled once before the warm runs (and hashed once more: its files are new).
      loadInFreshProcess(model, checkpoint, warmCache);
      loadInFreshProcess(model, checkpoint, warmCache);
      cases.push({ name: `warm load ${model}`, run: () => loadInFreshProcess(model, checkpoint, warmCache), compare: { kind: "target", ms: 300, label: "<= 0.3 s" } });
    }
    return cases;
  },
  cleanup: () => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  },
};

if (process.argv[1] === self && process.argv[2] === "--child") {
  await loadInChild(process.argv[3] as ModelName, process.argv[4]!, process.argv[5]!);
}
