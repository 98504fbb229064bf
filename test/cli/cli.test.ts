import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tensorrtStatus } from "../../lib/backends/tensorrt/index.js";
import { etaSeconds, formatDuration } from "../../lib/cli/progress.js";
import { readImage } from "../../lib/io/image.js";
import { readSample, writeSample } from "../../lib/io/sample.js";
import { syntheticSample } from "../../lib/io/synthetic_sample.js";
import { sample2rgb } from "../../lib/viz/sample2png.js";
import { endosynth } from "../support/cli.js";
import { fixture, repoRoot, temporaryDirectory } from "../support/fixtures.js";

const packageJson = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

test("--version prints the package version", async (t) => {
  const result = await endosynth(["--version"]);
  t.is(result.code, 0);
  t.is(result.stdout.trim(), packageJson.version);
});

test("--help lists the commands, and every command has its own --help", async (t) => {
  const top = await endosynth(["--help"]);
  t.is(top.code, 0);
  t.regex(top.stdout, /Usage: endosynth/);
  t.regex(top.stdout, /viz \[options\] \[sample\]/);
  t.regex(top.stdout, /info \[options\]/);
  for (const command of ["viz", "info"]) {
    const help = await endosynth([command, "--help"]);
    t.is(help.code, 0, command);
    t.regex(help.stdout, new RegExp(`Usage: endosynth ${command}`));
  }
});

test("viz -o writes the reference sample picture, pixel for pixel", async (t) => {
  const output = join(tempDir(t), "a.png");
  const result = await endosynth(["viz", fixture("utils", "sample_a.npz"), "-o", output]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /wrote .*a\.png/);
  const written = await readImage(output);
  const expected = await readImage(fixture("utils", "sample_a.sample2png.png"));
  t.deepEqual(written.shape, expected.shape);
  t.true(Buffer.from(written.data).equals(Buffer.from(expected.data)));
});

test("viz writes beside the sample by default, .npz replaced by .png", async (t) => {
  const dir = tempDir(t);
  const sample = syntheticSample({ height: 24, width: 32 });
  writeSample(join(dir, "small.npz"), sample);
  const result = await endosynth(["viz", "small.npz"], { cwd: dir });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(readdirSync(dir).sort(), ["small.npz", "small.png"]);
  const picture = await readImage(join(dir, "small.png"));
  t.true(Buffer.from(picture.data).equals(Buffer.from(sample2rgb(sample).data)));
});

test("viz --demo works in an empty folder: a synthetic sample and its picture", async (t) => {
  const dir = tempDir(t);
  const result = await endosynth(["viz", "--demo"], { cwd: dir });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(readdirSync(dir).sort(), ["endosynth-demo.npz", "endosynth-demo.png"]);
  const sample = readSample(join(dir, "endosynth-demo.npz"));
  t.deepEqual(sample.rgb.shape, [1080, 1920, 3]);
  t.true(Buffer.from(sample.depth.data.buffer, sample.depth.data.byteOffset, sample.depth.data.byteLength).equals(Buffer.from((syntheticSample().depth.data as Float32Array).buffer)));
  t.deepEqual((await readImage(join(dir, "endosynth-demo.png"))).shape, [1080, 5760, 3]);
});

test("info prints versions as text and as JSON", async (t) => {
  const text = await endosynth(["info"]);
  t.is(text.code, 0);
  t.regex(text.stdout, new RegExp(`^endosynth +${packageJson.version.replace(/\./g, "\\.")}$`, "m"));
  t.regex(text.stdout, /^sharp +\d+\.\d+\.\d+ \(libvips \d+\.\d+\.\d+\)$/m);
  const json = await endosynth(["info", "--json"]);
  const info = JSON.parse(json.stdout) as { package: { version: string }; node: string; binaries: { platform: string; platformPackage: { name: string; found: boolean; reason?: string } } };
  t.is(info.package.version, packageJson.version);
  t.is(info.node, process.versions.node);
  t.is(info.binaries.platform, `${process.platform}-${process.arch}`);
  t.is(info.binaries.platformPackage.name, `@endosynth/${process.platform}-${process.arch}`);
});

test("info says which backends can run here and, where TensorRT cannot, why", async (t) => {
  const expected = tensorrtStatus();
  const text = await endosynth(["info"]);
  t.regex(text.stdout, /^backend onnxruntime +available: ONNX Runtime \(CPU\) from onnxruntime-node \d+\.\d+\.\d+$/m);
  const line = text.stdout.split("\n").find((row) => row.startsWith("backend tensorrt"));
  t.is(line?.replace(/^backend tensorrt +/, ""), `${expected.available ? "available" : "unavailable"}: ${expected.reason}`);
  const json = JSON.parse((await endosynth(["info", "--json"])).stdout) as { backends: { backend: string; available: boolean; reason: string }[] };
  t.deepEqual(json.backends.find((status) => status.backend === "tensorrt"), { backend: "tensorrt", available: expected.available, reason: expected.reason });
});

test("info --models lists each model with where its checkpoint is expected and whether it is there", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "dav2-f.pth"), "placeholder");
  const json = await endosynth(["info", "--models", "--json"], { env: { ENDOSYNTH_CHECKPOINTS: dir } });
  const models = JSON.parse(json.stdout) as { name: string; parameters: number; input: { height: number; width: number }; checkpoint: { expectedAt: string; present: boolean; url: string } }[];
  t.deepEqual(models.map((model) => model.name), ["dav1", "dav2", "endodac", "midas"]);
  t.deepEqual(models.map((model) => model.parameters), [97_470_785, 97_470_785, 99_091_748, 345_014_441]);
  t.deepEqual(models[1].checkpoint, { expectedAt: join(dir, "dav2-f.pth"), present: true, url: "https://digitalsurgery-public.s3.eu-west-1.amazonaws.com/EndoSynth/weights/dav2-f.pth" });
  t.false(models[0].checkpoint.present);
  t.true(models.every((model) => model.input.height === 420 && model.input.width === 742));
  const text = await endosynth(["info", "--models"], { env: { ENDOSYNTH_CHECKPOINTS: dir } });
  t.regex(text.stdout, /^midas {2}MiDaS v3\.1 DPT on a BEiT-L\/16-512 encoder/m);
  t.regex(text.stdout, /checkpoint {3}.*dav1-f\.pth \(missing: npx endosynth pull dav1\)/);
});

test("a library error prints 'endosynth: <message>' and exits 1, without a stack", async (t) => {
  const dir = tempDir(t);
  const broken = join(dir, "broken.npz");
  const bytes = readFileSync(fixture("utils", "sample_a.npz"));
  writeFileSync(broken, bytes.subarray(0, 1000));
  const result = await endosynth(["viz", broken]);
  t.is(result.code, 1);
  t.is(result.stderr, `endosynth: ${broken}: not a zip archive or truncated: no end-of-central-directory record at its end\n`);
  t.deepEqual(readdirSync(dir), ["broken.npz"]);
});

test("--debug or ENDOSYNTH_DEBUG=1 adds the stack trace", async (t) => {
  for (const [args, env] of [[["viz", "missing.npz", "--debug"], {}], [["viz", "missing.npz"], { ENDOSYNTH_DEBUG: "1" }]] as const) {
    const result = await endosynth([...args], { cwd: tempDir(t), env });
    t.is(result.code, 1);
    t.regex(result.stderr, /^endosynth: missing\.npz: cannot read the file: no such file\n/);
    t.regex(result.stderr, /\n {4}at /);
  }
});

test("usage errors exit 1 with commander's message and the help", async (t) => {
  const unknown = await endosynth(["bogus"]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /error: unknown command 'bogus'/);
  const missing = await endosynth(["viz"]);
  t.is(missing.code, 1);
  t.is(missing.stderr, "endosynth: missing <sample.npz> (or pass --demo to make a synthetic one)\n");
  const level = await endosynth(["viz", "x.npz", "--compression-level", "12"]);
  t.is(level.code, 1);
  t.regex(level.stderr, /option '--compression-level <0-9>' argument '12' is invalid\. expected an integer from 0 to 9/);
});

// ---- output conventions (lib/cli/output.ts, lib/cli/progress.ts) ----

test("viz replaces an existing picture only with --overwrite, naming the file and the flag; -q prints nothing", async (t) => {
  const dir = tempDir(t);
  writeSample(join(dir, "small.npz"), syntheticSample({ height: 24, width: 32 }));
  writeFileSync(join(dir, "small.png"), "precious");
  const refused = await endosynth(["viz", "small.npz"], { cwd: dir });
  t.is(refused.code, 1);
  t.is(refused.stderr, "endosynth: small.png already exists: pass --overwrite to replace it\n");
  t.is(readFileSync(join(dir, "small.png"), "utf8"), "precious");
  const demo = await endosynth(["viz", "--demo", "small.npz", "-o", "other.png"], { cwd: dir });
  t.is(demo.code, 1);
  t.is(demo.stderr, "endosynth: small.npz already exists: pass --overwrite to replace it\n");
  const replaced = await endosynth(["viz", "small.npz", "--overwrite", "-q"], { cwd: dir });
  t.is(replaced.code, 0, replaced.stderr);
  t.is(replaced.stdout, "");
  t.is(replaced.stderr, "");
  t.deepEqual((await readImage(join(dir, "small.png"))).shape, [24, 96, 3]);
});

test("convert refuses to replace an existing model or its weights before converting anything", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "model.onnx.data"), "precious");
  const result = await endosynth(["convert", "dav2", "-c", fixture("dav2", "tiny.pth"), "-o", "model.onnx"], { cwd: dir });
  t.is(result.code, 1);
  t.is(result.stderr, "endosynth: model.onnx.data already exists: pass --overwrite to replace it\n");
  t.deepEqual(readdirSync(dir), ["model.onnx.data"]);
});

test("no ETA before 5 % of the work or 10 s; then the remaining work at the rate so far, resumed items left out", (t) => {
  t.is(etaSeconds(4, 100, 9), undefined);
  t.is(etaSeconds(5, 100, 9), (95 * 9) / 5);
  t.is(etaSeconds(1, 1000, 10), 999 * 10);
  t.is(etaSeconds(0, 100, 60), undefined);
  t.is(etaSeconds(10, undefined, 60), undefined);
  // 50 resumed: 3 of the 50 left (6 %) done in 6 s, 47 to go at 2 s each.
  t.is(etaSeconds(53, 100, 6, 50), 94);
  t.is(etaSeconds(52, 100, 6, 50), undefined);
  t.deepEqual([formatDuration(44.6), formatDuration(725), formatDuration(11220)], ["45s", "12m05s", "3h07m"]);
});
