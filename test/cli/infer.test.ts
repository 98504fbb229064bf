import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readImage } from "../../lib/io/image.js";
import { readNpy } from "../../lib/io/npy.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { probeVideo, readVideoFrames } from "../../lib/video/ffmpeg.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { whileRunningUntil } from "../helpers/child_process.js";
import { cliEntry, endosynth, tsxLoader } from "../helpers/cli.js";
import { fixture, temporaryDirectory } from "../helpers/fixtures.js";
import { BOUNDS, fixtureFloats } from "../models/helpers.js";
import { errorStats } from "../onnx/helpers.js";

function workDir(t: { teardown(fn: () => void): void }): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return { dir: dir.path, env: { ENDOSYNTH_CACHE: join(dir.path, "cache") } };
}

const tiny = (arch: string) => ["-c", fixture(arch, "tiny.pth")];

test("infer <model> input.npy -o depth.npy writes the reference wrapper's depth in metres", async (t) => {
  const { dir, env } = workDir(t);
  const output = join(dir, "depth.npy");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), "-o", output, "-q"], { env });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /input\.npy -> .*depth\.npy \(540x960, depth \d\.\d{3}-\d\.\d{3} m, \d+ ms\)/);
  const depth = readNpy(output);
  t.deepEqual(depth.shape, [540, 960]);
  const stats = errorStats(depth.data as Float32Array, fixtureFloats("dav1", "expected.npy"));
  t.true(stats.maxAbs <= BOUNDS.maxAbs && stats.maxRel <= BOUNDS.maxRel);
});

test("infer writes the colour map of the depth over a fixed range, and a side-by-side picture", async (t) => {
  const { dir, env } = workDir(t);
  const raw = join(dir, "depth.npy");
  await endosynth(["infer", "dav2", ...tiny("dav2"), fixture("dav2", "input.npy"), "-o", raw, "-q"], { env });
  const colours = join(dir, "depth.png");
  const both = join(dir, "both.png");
  t.is((await endosynth(["infer", "dav2", ...tiny("dav2"), fixture("dav2", "input.npy"), "-o", colours, "--range", "0.05,0.25", "-q"], { env })).code, 0);
  t.is((await endosynth(["infer", "dav2", ...tiny("dav2"), fixture("dav2", "input.npy"), "-o", both, "--side-by-side", "-q"], { env })).code, 0);
  const depth = readNpy(raw) as NdArray<"float32">;
  t.deepEqual(Buffer.from((await readImage(colours)).data), Buffer.from(depth2rgb(depth, 0.05, 0.25).data));
  const picture = await readImage(both);
  t.deepEqual(picture.shape, [288, 1024, 3]);
  const input = readNpy(fixture("dav2", "input.npy"));
  t.deepEqual(Buffer.from(picture.data.subarray(0, 512 * 3)), Buffer.from((input.data as Uint8Array).subarray(0, 512 * 3)));
});

test("infer on a folder writes one depth map per image into the -o folder; --ply adds point clouds", async (t) => {
  const { dir, env } = workDir(t);
  const inputs = join(dir, "frames");
  execFileSync("mkdir", ["-p", inputs]);
  writeFileSync(join(inputs, "a.npy"), readFileSync(fixture("dav1", "input.npy")));
  writeFileSync(join(inputs, "b.npz"), readFileSync(fixture("utils", "sample_a.npz")));
  writeFileSync(join(inputs, "notes.txt"), "ignored");
  const out = join(dir, "out");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), inputs, "-o", out, "--ply", "--fx", "800", "--fy", "800", "-q"], { env });
  t.is(result.code, 0, result.stderr);
  for (const name of ["a.png", "a.ply", "b.png", "b.ply"]) t.true(existsSync(join(out, name)), name);
  t.deepEqual((await readImage(join(out, "b.png"))).shape, [1080, 1920, 3]);
  t.is(readFileSync(join(out, "a.ply"), "latin1").split("\n")[0], "ply");
});

test("infer on a video writes a colour-mapped video with every frame", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "clip.mkv");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=10:duration=0.5", "-c:v", "ffv1", video]);
  const output = join(dir, "depth.mp4");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), video, "-o", output, "--side-by-side", "--inflight", "3"], { env });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /^5 frames at \d+\.\d frames\/s$/m);
  const info = await probeVideo(output);
  t.deepEqual([info.width, info.height, info.fps], [320, 96, 10]);
  let frames = 0;
  for await (const frame of readVideoFrames(output)) {
    t.deepEqual(frame.shape, [96, 320, 3]);
    frames++;
  }
  t.is(frames, 5);
});

test("Ctrl-C during a video stops cleanly: exit 130, no output and no temporary file left", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "long.mkv");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=10:duration=30", "-c:v", "ffv1", video]);
  const child = spawn(process.execPath, ["--import", tsxLoader, cliEntry, "infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, "depth.mp4")], {
    cwd: dir,
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await whileRunningUntil(child, () => stderr.includes("dav1 (fp32) on onnxruntime"), () => stderr);
  await new Promise((resolve) => setTimeout(resolve, 500));
  child.kill("SIGINT");
  t.is(await exited, 130);
  t.regex(stderr, /interrupted: stopping; .*depth\.mp4 is not written/);
  t.deepEqual(readdirSync(dir).filter((name) => name !== "cache").sort(), ["long.mkv"]);
});

test("infer refuses what it cannot do, naming the problem, and writes nothing", async (t) => {
  const { dir, env } = workDir(t);
  const cases: [string[], RegExp][] = [
    [["infer", "dav4", "x.png"], /value 'dav4' is invalid for argument 'model'\. Allowed choices are dav1, dav2, endodac, midas/],
    [["infer", "dav1", ...tiny("dav1"), join(dir, "missing.png")], /^endosynth: No such file or folder: .*missing\.png$/m],
    [["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), fixture("dav2", "input.npy"), "-o", join(dir, "one.png")], /-o must be a folder/],
    [
      ["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), fixture("dav2", "input.npy"), "-o", join(dir, "out")],
      /dav1\/input\.npy and .*dav2\/input\.npy would both be written to .*out\/input\.png/,
    ],
    [["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), "-o", join(dir, "depth.mp4")], /Expected a \.png, \.jpg or \.npy file, or a folder, for -o with still inputs but received .*depth\.mp4/],
    [["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), "--range", "0.2,0.02"], /option '--range <min,max>' argument '0\.2,0\.02' is invalid\. expected two increasing numbers/],
    [["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), "-o", join(dir, "x.png"), "--ply"], /--ply needs the camera intrinsics: give --fx and --fy/],
    [["infer", "dav1", ...tiny("dav1"), fixture("dav1", "preprocessed.npy")], /Expected dtype uint8/],
  ];
  for (const [args, message] of cases) {
    const result = await endosynth(args, { env, cwd: dir });
    t.not(result.code, 0, args.join(" "));
    t.regex(result.stderr, message);
  }
  t.false(existsSync(join(dir, "one.png")));
  t.false(existsSync(join(dir, "x.png")));
  t.false(existsSync(join(dir, "out")));
  t.false(existsSync(join(dir, "depth.mp4")));

  writeFileSync(join(dir, "broken.mp4"), "not a video");
  const video = await endosynth(["infer", "dav1", ...tiny("dav1"), join(dir, "broken.mp4")], { env, cwd: dir });
  t.is(video.code, 1);
  // The first line printed: the video is probed before the model is loaded ("hashing checkpoint" ...).
  t.true(video.stderr.startsWith(`endosynth: ${join(dir, "broken.mp4")}: not a video ffprobe can read`), video.stderr);
});

test("convert writes an ONNX model and its weights, and lists the keys inference does not use", async (t) => {
  const { dir, env } = workDir(t);
  const output = join(dir, "dav2.onnx");
  const result = await endosynth(["convert", "dav2", ...tiny("dav2"), "-o", output], { env });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^converted tiny\.pth \(dav2\) in \d+\.\d s: 1\.79 M parameters, \d+ nodes, fp32, channel order rgb$/m);
  t.regex(result.stdout, /5 checkpoint keys not used by inference:\n {2}pretrained\.mask_token: /);
  t.regex(result.stderr, /^reading checkpoint/m);
  t.true(existsSync(output) && existsSync(`${output}.data`));
  const inferred = join(dir, "depth.npy");
  t.is((await endosynth(["infer", "dav2", "--onnx", output, fixture("dav2", "input.npy"), "-o", inferred, "-q"], { env })).code, 0);
  t.true(errorStats(readNpy(inferred).data as Float32Array, fixtureFloats("dav2", "expected.npy")).maxAbs <= BOUNDS.maxAbs);
});

test("convert of a checkpoint of another architecture names it and leaves no file", async (t) => {
  const { dir, env } = workDir(t);
  const output = join(dir, "midas.onnx");
  const result = await endosynth(["convert", "midas", ...tiny("endodac"), "-o", output, "-q"], { env });
  t.is(result.code, 1);
  t.regex(result.stderr, /^endosynth: The checkpoint .*tiny\.pth looks like endodac, not midas/m);
  t.false(existsSync(output));
  t.false(existsSync(`${output}.data`));
});
