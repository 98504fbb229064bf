import test from "ava";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { MAX_THREADS } from "../lib/backends/onnxruntime/session.js";
import { tensorrtStatus } from "../lib/backends/tensorrt/index.js";
import { BackendUnavailableError, CheckpointError, DisposedError, InputError } from "../lib/errors.js";
import { load } from "../lib/model.js";
import { ndarray } from "../lib/ndarray/ndarray.js";
import { MAX_IMAGE_SIDE } from "../lib/ndarray/convert.js";
import { fixture, temporaryDirectory } from "./support/fixtures.js";
import { BOUNDS, fixtureFloats, fixtureInput } from "./models/helpers.js";
import { errorStats } from "./onnx/helpers.js";

function cacheDir(t: { teardown(fn: () => void): void }): string {
  const dir = temporaryDirectory("endosynth-cache-");
  t.teardown(dir.cleanup);
  return dir.path;
}

test("load('dav1') from its checkpoint infers metric depth matching the reference wrapper", async (t) => {
  const progress: string[] = [];
  const model = await load("dav1", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: cacheDir(t), onProgress: (p) => progress.push(p.phase) });
  t.teardown(() => model.dispose());
  t.is(model.name, "dav1");
  t.is(model.backend, "onnxruntime"); // no GPU and no TensorRT on the machines the tests run on
  t.regex(model.backendReason, /^ONNX Runtime \(CPU\), because /);
  const depth = await model.infer(fixtureInput("dav1"));
  t.deepEqual(depth.shape, [540, 960]);
  t.is(depth.dtype, "float32");
  const stats = errorStats(depth.data, fixtureFloats("dav1", "expected.npy"));
  t.log(`max abs ${stats.maxAbs.toExponential(2)} m, mean ${stats.meanAbs.toExponential(2)} m, max rel ${stats.maxRel.toExponential(2)}`);
  t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.meanAbs <= BOUNDS.meanAbs && stats.maxRel <= BOUNDS.maxRel);
  t.true(progress.includes("hashing checkpoint") && progress.includes("building graph") && progress.includes("opening onnxruntime"));
});

test("the second load reuses the verified cache entry instead of converting again", async (t) => {
  const dir = cacheDir(t);
  const checkpoint = fixture("dav2", "tiny.pth");
  const first = await load("dav2", { checkpoint, cacheDir: dir, backend: "onnxruntime" });
  await first.dispose();
  const phases: string[] = [];
  const second = await load("dav2", { checkpoint, cacheDir: dir, backend: "onnxruntime", onProgress: (p) => phases.push(p.phase) });
  t.teardown(() => second.dispose());
  t.is(second.onnxPath, first.onnxPath);
  t.false(phases.includes("building graph"));
  t.is(readdirSync(join(dir, "onnx")).length, 1);
});

test("channelOrder 'bgr' infers from a BGR frame what 'rgb' infers from the RGB frame", async (t) => {
  const input = fixtureInput("dav2");
  const bgr = ndarray(new Uint8Array(input.data.length), input.shape, "uint8");
  for (let i = 0; i < bgr.data.length; i += 3) bgr.data.set([input.data[i + 2], input.data[i + 1], input.data[i]], i);
  const model = await load("dav2", { checkpoint: fixture("dav2", "tiny.pth"), cacheDir: cacheDir(t), channelOrder: "bgr" });
  t.teardown(() => model.dispose());
  const stats = errorStats((await model.infer(bgr)).data, fixtureFloats("dav2", "expected.npy"));
  t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.maxRel <= BOUNDS.maxRel);
});

test("infer writes into a caller's buffer, takes RGBA frames, and keeps concurrent results apart", async (t) => {
  const model = await load("dav2", { checkpoint: fixture("dav2", "tiny.pth"), cacheDir: cacheDir(t) });
  t.teardown(() => model.dispose());
  const rgb = fixtureInput("dav2");
  const [height, width] = rgb.shape;
  const rgba = model.createInput(height, width, 4);
  for (let p = 0; p < height * width; p++) rgba.data.set([rgb.data[3 * p], rgb.data[3 * p + 1], rgb.data[3 * p + 2], 255], 4 * p);
  const out = model.createOutput(height, width);
  const written = await model.infer(rgba, { out });
  t.is(written.data, out.data);
  const expected = fixtureFloats("dav2", "expected.npy");
  t.true(errorStats(out.data, expected).maxAbs <= BOUNDS.maxAbs);

  const flat = ndarray(new Uint8Array(height * width * 3).fill(128), [height, width, 3]);
  const [a, b] = await Promise.all([model.infer(rgb), model.infer(flat)]);
  t.true(errorStats(a.data, expected).maxAbs <= BOUNDS.maxAbs);
  t.true(errorStats(b.data, expected).maxAbs > 1e-3);
});

test("the event loop keeps turning while a frame is inferred", async (t) => {
  const model = await load("dav1", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: cacheDir(t) });
  t.teardown(() => model.dispose());
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await model.infer(fixtureInput("dav1"));
  clearInterval(timer);
  t.true(ticks > 0, "no timer fired during inference: the run blocked the event loop");
});

test("load with an unknown model name lists the valid ones", async (t) => {
  const error = await t.throwsAsync(load("dav3" as "dav1"), { instanceOf: InputError });
  t.is(error?.code, "ERR_ENDOSYNTH_INPUT");
  t.regex(error?.message ?? "", /Expected one of "dav1", "dav2", "endodac", "midas" for name but received "dav3"/);
});

test("load without a checkpoint says where it looked and where the authors publish it", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const previous = process.env.ENDOSYNTH_CHECKPOINTS;
  process.env.ENDOSYNTH_CHECKPOINTS = dir.path;
  t.teardown(() => {
    if (previous === undefined) delete process.env.ENDOSYNTH_CHECKPOINTS;
    else process.env.ENDOSYNTH_CHECKPOINTS = previous;
  });
  const error = await t.throwsAsync(load("midas", { cacheDir: cacheDir(t) }), { instanceOf: CheckpointError });
  t.is(error?.file, join(dir.path, "midas-f.pth"));
  t.regex(error?.message ?? "", /No checkpoint for midas at .*midas-f\.pth \(from \$ENDOSYNTH_CHECKPOINTS\/midas-f\.pth\)\. Download it with `npx endosynth pull midas`/);
  t.regex(error?.message ?? "", /https:\/\/digitalsurgery-public\.s3\.eu-west-1\.amazonaws\.com\/EndoSynth\/weights\/midas-f\.pth/);
});

test("load of a checkpoint of another architecture names it and leaves nothing in the cache", async (t) => {
  const dir = cacheDir(t);
  const error = await t.throwsAsync(load("midas", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: dir }), { instanceOf: CheckpointError });
  t.regex(error?.message ?? "", /looks like dav1/);
  t.deepEqual(existsSync(join(dir, "onnx")) ? readdirSync(join(dir, "onnx")) : [], []);
});

test("backend 'tensorrt' runs on TensorRT where it can, and elsewhere rejects with the reason it cannot", async (t) => {
  const status = tensorrtStatus();
  const loading = load("dav1", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: cacheDir(t), backend: "tensorrt" });
  if (status.available) {
    const model = await loading;
    t.teardown(() => model.dispose());
    t.is(model.backend, "tensorrt");
    t.is(model.backendReason, "TensorRT was requested");
    return;
  }
  const error = await t.throwsAsync(loading, { instanceOf: BackendUnavailableError });
  t.is(error?.message, status.reason);
});

test("bad options and bad frames are refused before any work, naming what was wrong", async (t) => {
  await t.throwsAsync(load("dav1", { backend: "cuda" as "auto" }), { instanceOf: InputError, message: /Expected one of "auto", "onnxruntime", "tensorrt" for options.backend but received "cuda"/ });
  await t.throwsAsync(load("dav1", { threads: 0 }), { instanceOf: InputError, message: /options.threads/ });
  await t.throwsAsync(load("dav1", { threads: MAX_THREADS + 1 }), {
    instanceOf: InputError,
    message: `Expected an integer between 1 and ${MAX_THREADS} for options.threads but received ${MAX_THREADS + 1}`,
  });
  await t.throwsAsync(load("dav1", { checkpoint: "a.pth", onnx: "b.onnx" }), { instanceOf: InputError, message: /either options.checkpoint or options.onnx/ });
  await t.throwsAsync(load("dav1", { onnx: "b.onnx", channelOrder: "bgr" }), {
    instanceOf: InputError,
    message: /^options\.channelOrder applies when a checkpoint is converted; the ONNX file of options\.onnx keeps the order it was converted with/,
  });
  await t.throwsAsync(load("dav1", { colour: "rgb" } as never), { instanceOf: InputError, message: /Unknown option "colour"/ });

  const model = await load("dav1", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: cacheDir(t) });
  t.teardown(() => model.dispose());
  await t.throwsAsync(model.infer(ndarray(new Float32Array(12), [2, 2, 3])), { instanceOf: InputError, message: /uint8/ });
  await t.throwsAsync(model.infer(ndarray(new Uint8Array(8), [2, 2, 2])), { instanceOf: InputError });
  await t.throwsAsync(model.infer(fixtureInput("dav1"), { out: new Float32Array(5) }), {
    instanceOf: InputError,
    message: "Expected options.out to hold 518400 values (H * W of the input) but it holds 5",
  });
  t.deepEqual(model.createInput(MAX_IMAGE_SIDE, 1).shape, [MAX_IMAGE_SIDE, 1, 3], "buffers for every frame size infer takes");
  t.throws(() => model.createOutput(1, MAX_IMAGE_SIDE + 1), { instanceOf: InputError, message: `Expected an integer between 1 and ${MAX_IMAGE_SIDE} for width but received ${MAX_IMAGE_SIDE + 1}` });
});

test("a disposed model refuses work; dispose is idempotent and waits for runs in flight", async (t) => {
  const model = await load("dav1", { checkpoint: fixture("dav1", "tiny.pth"), cacheDir: cacheDir(t) });
  const running = model.infer(fixtureInput("dav1"));
  const disposing = model.dispose();
  t.is(model.dispose(), disposing);
  const depth = await running;
  await disposing;
  t.deepEqual(depth.shape, [540, 960]);
  await t.throwsAsync(model.infer(fixtureInput("dav1")), { instanceOf: DisposedError, message: "Model dav1 has been disposed and cannot be used any more" });
  t.throws(() => model.createInput(2, 2), { instanceOf: DisposedError });
});
