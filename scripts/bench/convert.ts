/**
 * Conversion benchmark (`npm run bench -- convert`): a full-size Depth Anything v1 checkpoint with
 * exactly the keys of fixtures/dav1/keys_full.json and random weights (97.5 M parameters, 390 MB)
 * is written once, then converted to ONNX by `convertCheckpoint`, each run in a fresh process so
 * its peak RSS is the conversion's own (reading the checkpoint included).
 *
 * Targets (issue 3): conversion < 20 s, peak RSS < 2x the checkpoint size.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writePth } from "../../lib/checkpoint/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../../lib/checkpoint/random_state_dict.js";
import { convertCheckpoint } from "../../lib/models/convert.js";
import type { Suite } from "./harness.js";

const MB = 1e6;
const self = fileURLToPath(import.meta.url);
const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(self, "../../../../shared/fixtures"));

/** What one conversion process reports. */
interface ChildResult {
  seconds: number;
  peakRssMB: number;
  parameters: number;
}

/** Writes the full-size random dav1 checkpoint (streamed: one tensor in memory at a time). */
export function writeRandomDav1Checkpoint(path: string): void {
  const keys = JSON.parse(readFileSync(join(fixtures, "dav1", "keys_full.json"), "utf8")) as KeysJson;
  writePth(path, randomStateDictFromKeys(keys, 1));
}

/** The child process: converts and prints its own time and peak RSS as JSON. */
async function convertInChild(checkpoint: string, output: string): Promise<void> {
  const report = await convertCheckpoint({ model: "dav1", checkpoint, output });
  const result: ChildResult = {
    seconds: report.seconds,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
    parameters: report.parameters,
  };
  process.stdout.write(JSON.stringify(result));
}

function convertInFreshProcess(checkpoint: string, output: string): ChildResult {
  const stdout = execFileSync(process.execPath, [...process.execArgv, self, "--child", checkpoint, output], { encoding: "utf8" });
  return JSON.parse(stdout) as ChildResult;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

let workDir: string | undefined;
const results: ChildResult[] = [];

/** The `convert` suite. */
export const convertSuite: Suite = {
  description: "convertCheckpoint on a full-size random dav1 checkpoint (keys_full.json), fresh process per run",
  setup: () => {
    workDir = mkdtempSync(join(tmpdir(), "endosynth-bench-convert-"));
    const checkpoint = join(workDir, "dav1-f.pth");
    writeRandomDav1Checkpoint(checkpoint);
    const output = join(workDir, "dav1.onnx");
    return [
      {
        name: "convert dav1 (97.5 M params), incl. process start",
        run: () => results.push(convertInFreshProcess(checkpoint, output)),
        compare: { kind: "target", ms: 20_000, label: "< 20 s" },
      },
    ];
  },
  cleanup: () => {
    if (workDir && results.length > 0) {
      const checkpointMB = statSync(join(workDir, "dav1-f.pth")).size / MB;
      const peak = Math.max(...results.map((r) => r.peakRssMB));
      console.log(
        `convertCheckpoint itself: median ${median(results.map((r) => r.seconds)).toFixed(2)} s over ${results.length} runs; ` +
          `peak RSS ${peak.toFixed(0)} MB = ${(peak / checkpointMB).toFixed(2)}x the ${checkpointMB.toFixed(0)} MB checkpoint (target < 2x)`,
      );
    }
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  },
};

if (process.argv[1] === self && process.argv[2] === "--child") {
  await convertInChild(process.argv[3], process.argv[4]);
}
