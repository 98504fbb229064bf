/**
 * The seeded fuzz suite: for every reader, tens of thousands of damaged files (truncated,
 * bit-flipped, boundary values in length and offset fields, chunks cut, repeated or inserted) and
 * random headers, each of which must read to the right data or fail with an EndosynthError, in
 * bounded time. Fixed seeds, so a failure replays; `npm run fuzz -- --minutes N` runs longer on
 * random seeds.
 */
import test from "ava";
import { FileFormatError } from "../../lib/errors.js";
import { fuzz, type FuzzReport, prepare } from "./run.js";
import { type FuzzTarget, fuzzTargets } from "./targets.js";

const SEED = 20_240_601;

/** Cases per target: about two seconds each on a shared 2-core machine (the readers from a file, ~1 ms a case, fewer). */
const CASES: Record<string, number> = {
  npy: 60_000,
  npz: 30_000,
  "npz-file": 1_000,
  zip: 40_000,
  pth: 20_000,
  "pth-pickle": 20_000,
  "npz-member": 10_000,
  safetensors: 30_000,
  "onnx-metadata": 1_500,
  "png-jpeg": 2_000,
};

function summary(report: FuzzReport): string[] {
  return report.failures.slice(0, 10).map((failure) => `case ${failure.index}: ${failure.problem} (${failure.description})`);
}

for (const target of fuzzTargets()) {
  test.serial(`fuzz ${target.name}: ${CASES[target.name]} damaged files read right or fail typed`, async (t) => {
    t.teardown(() => target.close?.());
    const corpus = await prepare(target);
    const report = await fuzz(target, corpus, { seed: SEED, cases: CASES[target.name] });
    t.log(`${report.cases} cases: ${report.read} read, ${report.refused} refused; slowest ${report.slowestMs.toFixed(1)} ms`);
    t.deepEqual(summary(report), []);
    t.is(report.cases, CASES[target.name]);
    // Both outcomes occur: the mutations reach past the first check, and the corpus reads.
    t.true(report.read > 0 && report.refused > 0);
  });
}

test.serial("the harness reports untyped errors and wrong data (it can fail)", async (t) => {
  let calls = 0;
  const flaky: FuzzTarget = {
    name: "flaky",
    integrity: "exact",
    corpus: async () => [Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])],
    read(bytes) {
      calls++;
      if (calls === 1) return [...bytes];
      if (bytes.length < 4) throw new RangeError("Offset is outside the bounds of the DataView");
      if (bytes[0] !== 1) throw new FileFormatError("bad magic");
      return [...bytes].reverse();
    },
  };
  const report = await fuzz(flaky, await prepare(flaky), { seed: 1, cases: 300 });
  const problems = new Set(report.failures.map((failure) => failure.problem));
  t.true(problems.has("untyped RangeError: Offset is outside the bounds of the DataView"));
  t.true(problems.has("read, but not to the original's data"));
  t.true(report.refused > 0);
});
