import test from "ava";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { AbortError, CheckpointError } from "../../lib/errors.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";

test("a checkpoint file converts in the worker with its progress phases in order", async (t) => {
  const phases: string[] = [];
  const output = join(tempDir(t), "dav2.onnx");
  const report = await convertCheckpoint({ model: "dav2", checkpoint: fixture("dav2", "tiny.pth"), output, onProgress: (p) => phases.push(p.phase) });
  const firsts = phases.filter((phase, i) => phases.indexOf(phase) === i);
  t.deepEqual(firsts, ["reading checkpoint", "building graph", "writing weights"]);
  t.deepEqual(report.files, [output, `${output}.data`]);
  t.true(existsSync(output) && existsSync(`${output}.data`));
});

test("aborting the conversion of a checkpoint file throws AbortError and leaves nothing at the output", async (t) => {
  const controller = new AbortController();
  const dir = tempDir(t);
  const converting = convertCheckpoint({
    model: "dav1",
    checkpoint: fixture("dav1", "tiny.pth"),
    output: join(dir, "model.onnx"),
    signal: controller.signal,
    onProgress: (p) => p.phase === "building graph" && controller.abort(),
  });
  await t.throwsAsync(converting, { instanceOf: AbortError, code: "ERR_ENDOSYNTH_ABORTED" });
  t.deepEqual(readdirSync(dir), []);
});

test("convertCheckpoint with a signal already aborted rejects with AbortError and writes nothing", async (t) => {
  const dir = tempDir(t);
  const converting = convertCheckpoint({ model: "dav1", checkpoint: fixture("dav1", "tiny.pth"), output: join(dir, "model.onnx"), signal: AbortSignal.abort() });
  await t.throwsAsync(converting, { instanceOf: AbortError });
  t.deepEqual(readdirSync(dir), []);
});

test("a file that is not a checkpoint fails with the reader's CheckpointError, its stack at the caller's line", async (t) => {
  const notCheckpoint = fixture("utils", "sample_a.npz");
  const error = await t.throwsAsync(convertCheckpoint({ model: "dav1", checkpoint: notCheckpoint, output: join(tempDir(t), "x.onnx") }), {
    instanceOf: CheckpointError,
    code: "ERR_ENDOSYNTH_CHECKPOINT",
  });
  t.is(error.file, notCheckpoint);
  t.regex(error.message, /is a zip archive but not a PyTorch checkpoint/);
  t.regex(error.stack!, /^CheckpointError: .*sample_a\.npz/);
  t.regex(error.stack!, /worker\.test\.ts/);
});
