/**
 * Long fuzzing runs: `npm run fuzz -- --minutes 30 [--seed 123] [--target npz]`. The same targets
 * and checks as the test suite's short run (test/fuzz), for as long as asked, on a random seed
 * (printed, so any failure can be replayed). Failing inputs are written to a folder it names; the
 * exit status is 1 when there are any.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fuzz, type FuzzFailure, prepare } from "../test/fuzz/run.js";
import { fuzzTargets } from "../test/fuzz/targets.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    seed: { type: "string" },
    target: { type: "string" },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, not ${values.minutes}`);
const seed = values.seed === undefined ? (Math.random() * 2 ** 32) >>> 0 : Number(values.seed);
const targets = fuzzTargets().filter((target) => values.target === undefined || target.name === values.target);
if (targets.length === 0) throw new Error(`no target named ${values.target}; known: ${fuzzTargets().map((target) => target.name).join(", ")}`);

console.log(`fuzzing ${targets.map((target) => target.name).join(", ")} for ${minutes} min, seed ${seed}`);
const failures: FuzzFailure[] = [];
let total = 0;
const slice = (minutes * 60_000) / targets.length;
for (const target of targets) {
  const corpus = await prepare(target);
  const report = await fuzz(target, corpus, { seed, until: Date.now() + slice });
  target.close?.();
  total += report.cases;
  failures.push(...report.failures);
  console.log(
    `${target.name}: ${report.cases} cases, ${report.read} read, ${report.refused} refused with a typed error, ` +
      `${report.failures.length} failures, slowest ${report.slowestMs.toFixed(1)} ms`,
  );
}
const peak = process.resourceUsage().maxRSS / 1024;
console.log(`${total} cases, ${failures.length} failures, peak RSS ${peak.toFixed(0)} MiB`);
if (failures.length > 0) {
  const folder = join(tmpdir(), `endosynth-fuzz-${seed}`);
  mkdirSync(folder, { recursive: true });
  for (const failure of failures) {
    const name = `${failure.target}-${failure.index}`;
    writeFileSync(join(folder, `${name}.bin`), failure.bytes);
    console.log(`${name}: ${failure.problem} (${failure.description})`);
  }
  console.log(`failing inputs: ${folder} (replay: --seed ${seed} --target <name>)`);
  process.exitCode = 1;
}
