/**
 * `convert -o`: a model and its weights file appear as a pair. A process killed with SIGKILL at
 * any instant leaves the previous pair or the new one, never a mix, and whatever temporary files it
 * left are gone after the next conversion into the same folder. Conversions alternate between
 * fp32 and fp16, whose weights differ, so a model beside the other conversion's weights shows.
 */
import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkConvertedOnnx } from "../../lib/convert/converted_onnx.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { seededRandom, startChild } from "../support/spawn.js";

const KILLS = 20;

test(`SIGKILL at ${KILLS} random instants of convert -o never leaves a model beside another conversion's weights`, async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const output = join(dir.path, "model.onnx");
  const checkpoint = fixture("dav2", "tiny.pth");
  const cache = join(dir.path, "cache");
  // Two whole runs: the first fills the caches of tsx and the OS, the second's length is what
  // the killed runs take.
  let duration = Infinity;
  for (const precision of ["fp16", "fp32"]) {
    const whole = startChild("convert", ["dav2", checkpoint, output, precision]);
    const started = performance.now();
    t.is((await whole.exited).code, 0, whole.output());
    duration = Math.min(duration, performance.now() - started);
  }
  await checkConvertedOnnx("dav2", output, cache, undefined);

  const random = seededRandom(20261203);
  let killedMidWay = 0;
  for (let i = 0; i < KILLS; i++) {
    const run = startChild("convert", ["dav2", checkpoint, output, i % 2 === 0 ? "fp16" : "fp32"]);
    // From the start of the process to its usual end: every phase gets its share.
    const delay = 0.1 * duration + random() * 0.9 * duration;
    await new Promise((resolve) => setTimeout(resolve, delay));
    const finished = run.child.exitCode !== null;
    run.child.kill("SIGKILL");
    await run.exited;
    if (!finished) killedMidWay++;
    // The pair at the output is whole: the model's recorded weights are the ones beside it.
    await t.notThrowsAsync(checkConvertedOnnx("dav2", output, cache, undefined), `after kill ${i + 1} at ${delay.toFixed(0)} ms`);
  }
  t.true(killedMidWay >= KILLS / 2, `${killedMidWay} of ${KILLS} kills landed before the process finished`);

  const last = startChild("convert", ["dav2", checkpoint, output, "fp32"]);
  t.is((await last.exited).code, 0, last.output());
  const left = readdirSync(dir.path).filter((name) => name !== "cache");
  t.deepEqual(left.filter((name) => name !== "model.onnx" && !/^model\.onnx\.([0-9a-f]{16}\.)?data$/.test(name)), [], "no temporary or lock file is left");
  t.is(left.length, 2, `the model and one weights file remain: ${left.join(", ")}`);
});

test("a conversion killed just before each of its file-system changes in turn leaves a whole pair every time", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const output = join(dir.path, "model.onnx");
  const checkpoint = fixture("dav1", "tiny.pth");
  const cache = join(dir.path, "cache");
  const first = startChild("convert_crashing", ["0", "dav1", checkpoint, output, "fp32"]);
  t.is((await first.exited).code, 0, first.output());
  await checkConvertedOnnx("dav1", output, cache, undefined);
  // Count the changes a replacing conversion makes, with a full run (fp16 over the fp32 pair).
  const counting = startChild("convert_crashing", ["0", "dav1", checkpoint, output, "fp16"]);
  t.is((await counting.exited).code, 0, counting.output());
  const changes = Number(counting.output().trim());
  t.true(changes >= 4, `a replacing conversion makes ${changes} file-system changes`);
  let current = "fp16";
  for (let k = 1; k <= changes; k++) {
    // Each crashing conversion writes the other precision than the pair in place.
    const run = startChild("convert_crashing", [String(k), "dav1", checkpoint, output, current === "fp16" ? "fp32" : "fp16"]);
    const { signal } = await run.exited;
    t.is(signal, "SIGKILL", `crash point ${k}: ${run.output()}`);
    current = await checkConvertedOnnx("dav1", output, cache, undefined).catch((error: Error) => t.fail(`killed before change ${k} of ${changes}: ${error.message}`) as never);
  }
});
