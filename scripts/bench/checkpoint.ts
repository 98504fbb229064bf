/**
 * Checkpoint reading benchmark: writes a full-size random checkpoint with exactly the keys of a
 * fixture's keys_full.json (default MiDaS, 345 M parameters, 1.4 GB) through the streaming pth
 * writer, then reads it back with readStateDict. Each phase runs in its own process so its peak
 * RSS is its own.
 *
 *   npx tsx scripts/bench/checkpoint.ts [--arch midas] [--runs 3] [--dir /tmp]
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writePth } from "../../lib/checkpoint/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../../lib/checkpoint/random_state_dict.js";
import { readStateDict } from "../../lib/checkpoint/state_dict.js";

const MB = 1e6;
const self = fileURLToPath(import.meta.url);
const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(self, "../../../../shared/fixtures"));

interface PhaseResult {
  seconds: number;
  peakRssMB: number;
  detail: Record<string, unknown>;
}

/** Runs one phase in this process and prints its result as JSON (the parent parses it). */
async function runPhase(phase: string, arch: string, path: string): Promise<void> {
  const start = performance.now();
  let detail: Record<string, unknown>;
  if (phase === "generate") {
    const keys = JSON.parse(readFileSync(join(fixtures, arch, "keys_full.json"), "utf8")) as KeysJson;
    let elements = 0;
    for (const [, array] of randomStateDictFromKeys(keys, 1)) elements += array.data.length;
    detail = { elements };
  } else if (phase === "write") {
    const keys = JSON.parse(readFileSync(join(fixtures, arch, "keys_full.json"), "utf8")) as KeysJson;
    detail = { ...writePth(path, randomStateDictFromKeys(keys, 1)) };
  } else {
    const { info } = await readStateDict(path);
    detail = { tensors: info.tensors, parameters: info.parameters, copiedTensors: info.copiedTensors };
  }
  const result: PhaseResult = {
    seconds: (performance.now() - start) / 1000,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
    detail,
  };
  process.stdout.write(JSON.stringify(result));
}

function spawnPhase(phase: string, arch: string, path: string): PhaseResult {
  const output = execFileSync(process.execPath, [...process.execArgv, self, "--phase", phase, "--arch", arch, "--file", path], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  return JSON.parse(output) as PhaseResult;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      phase: { type: "string" },
      arch: { type: "string", default: "midas" },
      file: { type: "string" },
      runs: { type: "string", default: "3" },
      dir: { type: "string", default: tmpdir() },
    },
  });
  const arch = values.arch as string;
  if (values.phase) return runPhase(values.phase, arch, values.file as string);

  const path = join(values.dir as string, `endosynth-bench-${arch}-random.pth`);
  const runs = Number(values.runs);
  try {
    const generate = spawnPhase("generate", arch, path);
    const write = spawnPhase("write", arch, path);
    const fileMB = statSync(path).size / MB;
    console.log(`${arch}: random state dict, ${fileMB.toFixed(0)} MB checkpoint`);
    console.log(`  generate only: ${generate.seconds.toFixed(2)} s, peak RSS ${generate.peakRssMB.toFixed(0)} MB`);
    console.log(`  write (generate + stream to disk): ${write.seconds.toFixed(2)} s, peak RSS ${write.peakRssMB.toFixed(0)} MB`, write.detail);
    const reads = Array.from({ length: runs }, () => spawnPhase("read", arch, path));
    const seconds = median(reads.map((r) => r.seconds));
    const peak = Math.max(...reads.map((r) => r.peakRssMB));
    console.log(
      `  read (page cache warm), median of ${runs}: ${seconds.toFixed(2)} s = ${(fileMB / seconds).toFixed(0)} MB/s, ` +
        `peak RSS ${peak.toFixed(0)} MB = ${(peak / fileMB).toFixed(2)}x the file`,
      reads[0].detail,
    );
  } finally {
    rmSync(path, { force: true });
  }
}

await main();
