import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import sharp from "sharp";
import { readImage } from "../../lib/io/image.js";
import { readNpy } from "../../lib/io/npy.js";
import { readNpz } from "../../lib/io/npz.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { probeVideo, readVideo } from "../../lib/video/index.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { whileRunningUntil } from "../support/child_process.js";
import { cliEntry, endosynth, tsxLoader } from "../support/cli.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { BOUNDS, fixtureFloats } from "../models/helpers.js";
import { errorStats } from "../onnx/helpers.js";
import { decodeGrey16Png } from "../video/png16.js";
import { ffmpeg, freeUdpPort, probedFrameTimes, startSender, stopProcess, testPattern } from "../video/helpers.js";

function workDir(t: ExecutionContext): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return { dir: dir.path, env: { ENDOSYNTH_CACHE: join(dir.path, "cache") } };
}

const tiny = (arch: string) => ["-c", fixture(arch, "tiny.pth")];

/** The rows of a frames table. */
function csvRows(path: string): Record<string, string>[] {
  const [header, ...lines] = readFileSync(path, "utf8").trim().split("\n");
  const columns = header.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((value, i) => [columns[i], value])));
}

/** Runs the CLI as a child process users would start; resolves once `ready(stderr)` holds. */
function startCli(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ["--import", tsxLoader, cliEntry, ...args], { cwd, env: { ...process.env, ...env } });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  child.stdout.on("data", (chunk) => (stdout += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exited, stderr: () => stderr, stdout: () => stdout };
}

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

test("infer writes the colour map over a fixed range, a side-by-side picture, 16-bit millimetres and float TIFF metres", async (t) => {
  const { dir, env } = workDir(t);
  const input = fixture("dav2", "input.npy");
  const raw = join(dir, "depth.npy");
  t.is((await endosynth(["infer", "dav2", ...tiny("dav2"), input, "-o", raw, "-q"], { env })).code, 0);
  const depth = readNpy(raw) as NdArray<"float32">;
  const colours = join(dir, "depth.png");
  const both = join(dir, "both.png");
  const millimetres = join(dir, "mm.png");
  const tiff = join(dir, "depth.tif");
  for (const args of [["-o", colours, "--range", "0.05,0.25"], ["-o", both, "--side-by-side"], ["-o", millimetres, "--format", "png16"], ["-o", tiff]]) {
    const result = await endosynth(["infer", "dav2", ...tiny("dav2"), input, ...args, "-q"], { env });
    t.is(result.code, 0, result.stderr);
  }
  t.deepEqual(Buffer.from((await readImage(colours)).data), Buffer.from(depth2rgb(depth, 0.05, 0.25).data));
  const picture = await readImage(both);
  t.deepEqual(picture.shape, [288, 1024, 3]);
  const inputArray = readNpy(input);
  t.deepEqual(Buffer.from(picture.data.subarray(0, 512 * 3)), Buffer.from((inputArray.data as Uint8Array).subarray(0, 512 * 3)));
  const stored = decodeGrey16Png(readFileSync(millimetres)).values;
  t.true(stored.every((value, i) => value === Math.round(depth.data[i] * 1000)));
  const floats = await sharp(tiff).extractChannel(0).raw({ depth: "float" }).toBuffer();
  t.deepEqual(new Float32Array(floats.buffer, floats.byteOffset, depth.data.length), depth.data);
});

test("infer on a folder writes one depth map per image, a frames table, and with --ply point clouds; -o .npz stacks them", async (t) => {
  const { dir, env } = workDir(t);
  const inputs = join(dir, "frames");
  mkdirSync(inputs);
  writeFileSync(join(inputs, "a.npy"), readFileSync(fixture("dav1", "input.npy")));
  writeFileSync(join(inputs, "b.npy"), readFileSync(fixture("dav1", "input.npy")));
  writeFileSync(join(inputs, "notes.txt"), "ignored");
  const out = join(dir, "out");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), inputs, "-o", out, "--format", "npy", "--ply", "--fx", "800", "--fy", "800", "-q"], { env });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(readdirSync(out).sort(), ["a.npy", "a.ply", "b.npy", "b.ply", "frames.csv"]);
  t.is(readFileSync(join(out, "a.ply"), "latin1").split("\n")[0], "ply");
  t.deepEqual(csvRows(join(out, "frames.csv")).map(({ index, input, output }) => [index, input, output]), [
    ["0", join(inputs, "a.npy"), join(out, "a.npy")],
    ["1", join(inputs, "b.npy"), join(out, "b.npy")],
  ]);
  const stack = join(dir, "stack.npz");
  t.is((await endosynth(["infer", "dav1", ...tiny("dav1"), inputs, "-o", stack, "-q"], { env })).code, 0);
  const arrays = readNpz(stack);
  t.deepEqual(arrays.depth.shape, [2, 540, 960]);
  t.deepEqual(arrays.depth.data.subarray(0, 540 * 960), readNpy(join(out, "a.npy")).data);
  t.deepEqual(csvRows(join(dir, "stack.csv")).length, 2);
});

test("infer on a video writes a colour-mapped video with every frame at its own time; odd sizes are padded", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "clip.mkv");
  // 161x97 (odd) and a 0.5 s gap after frame 2: variable frame rate.
  testPattern(video, 5, { size: "161x97", rate: 10, args: ["-vf", "setpts='(N*0.1+gte(N,3)*0.5)/TB'", "-vsync", "vfr", "-c:v", "ffv1"] });
  const output = join(dir, "depth.mp4");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), video, "-o", output, "--side-by-side", "--inflight", "3"], { env });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /^5 frames at \d+\.\d frames\/s$/m);
  t.regex(result.stderr, /^latency \(capture to depth\) mean \d+\.\d ms, p50 \d+\.\d, p95 \d+\.\d, max \d+\.\d; 0 frames dropped$/m);
  t.like(await probeVideo(output), { width: 322, height: 98, codec: "h264" });
  const inputTimes = probedFrameTimes(video);
  const outputTimes: number[] = [];
  for await (const { frame, pts } of readVideo(output)) {
    t.deepEqual(frame.shape, [98, 322, 3]);
    outputTimes.push(pts);
  }
  t.deepEqual(outputTimes.map((time) => Math.round(time * 1000)), inputTimes.map((time) => Math.round(time * 1000)));
  const rows = csvRows(join(dir, "depth.csv"));
  t.deepEqual(rows.map(({ index, frame_number }) => [index, frame_number]), [0, 1, 2, 3, 4].map((i) => [String(i), String(i)]));
  t.deepEqual(rows.map(({ pts }) => Number(pts)), inputTimes);
  t.true(rows.every(({ latency_ms }) => Number(latency_ms) > 0));
});

test("a video into a folder, a .npz, 16-bit PNGs or TIFFs: metres for every frame, the same depth in each", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "clip.mp4");
  testPattern(video, 3, { size: "96x64", rate: 25 });
  const runs: [string, string[]][] = [["npy", ["--format", "npy"]], ["mm", ["--format", "png16", "--scale", "5000"]], ["tif", ["--format", "tiff"]], ["stack.npz", []]];
  for (const [name, args] of runs) {
    const result = await endosynth(["infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, name), ...args, "-q"], { env });
    t.is(result.code, 0, result.stderr);
  }
  t.deepEqual(readdirSync(join(dir, "npy")).sort(), ["000000.npy", "000001.npy", "000002.npy", "frames.csv"]);
  const stack = readNpz(join(dir, "stack.npz"));
  t.deepEqual(stack.depth.shape, [3, 64, 96]);
  t.deepEqual([...(stack.pts.data as Float64Array)], [0, 0.04, 0.08]);
  for (let i = 0; i < 3; i++) {
    const depth = readNpy(join(dir, "npy", `00000${i}.npy`)).data as Float32Array;
    t.deepEqual(stack.depth.data.subarray(i * 64 * 96, (i + 1) * 64 * 96), depth, `frame ${i}`);
    const tiff = await sharp(join(dir, "tif", `00000${i}.tif`)).extractChannel(0).raw({ depth: "float" }).toBuffer();
    t.deepEqual(new Float32Array(tiff.buffer, tiff.byteOffset, depth.length), depth);
    const mm = decodeGrey16Png(readFileSync(join(dir, "mm", `00000${i}.png`))).values;
    t.true(mm.every((value, k) => value === Math.min(65535, Math.round(depth[k] * 5000))));
  }
  t.deepEqual(csvRows(join(dir, "npy", "frames.csv")).map(({ pts, output }) => [pts, output]), [0, 1, 2].map((i) => [String(i * 0.04), join(dir, "npy", `00000${i}.npy`)]));
});

test("infer dav1 udp://127.0.0.1:PORT --frames 10 -o out/ writes 10 depth maps while ffmpeg sends a test pattern there", async (t) => {
  const { dir, env } = workDir(t);
  const port = await freeUdpPort();
  const sender = startSender("mpegts", `udp://127.0.0.1:${port}?pkt_size=1316`, { seconds: 240 });
  t.teardown(() => stopProcess(sender));
  const out = join(dir, "out");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), `udp://127.0.0.1:${port}`, "--frames", "10", "-o", `${out}/`], { env });
  t.is(result.code, 0, result.stderr);
  const files = readdirSync(out).sort();
  t.deepEqual(files, [...Array.from({ length: 10 }, (_, i) => `00000${i}.png`.slice(-10)), "frames.csv"]);
  for (const file of files.slice(0, 10)) t.deepEqual((await readImage(join(out, file))).shape, [96, 160, 3]);
  const rows = csvRows(join(out, "frames.csv"));
  t.is(rows.length, 10);
  t.true(rows.every((row, i) => i === 0 || (Number(row.pts) > Number(rows[i - 1].pts) && Number(row.frame_number) > Number(rows[i - 1].frame_number))));
  const timing = /^latency \(capture to depth\) mean ([\d.]+) ms, p50 ([\d.]+), p95 ([\d.]+), max ([\d.]+); (\d+) frames? dropped$/m.exec(result.stderr);
  t.truthy(timing, result.stderr);
  t.log(`UDP, tiny dav1 on this machine: ${timing?.[0]}`);
  t.is(Number(timing![5]), Number(rows[9].frame_number) - Number(rows[0].frame_number) - 9);
});

test("--json prints one result object on stdout: outputs, frames, dropped, latency, warnings", async (t) => {
  const { dir, env } = workDir(t);
  const whole = join(dir, "whole.mkv");
  testPattern(whole, 40, { size: "160x96", rate: 25, args: ["-c:v", "ffv1"] });
  const bytes = readFileSync(whole);
  const video = join(dir, "cut.mkv");
  writeFileSync(video, bytes.subarray(0, Math.floor(bytes.length * 0.4)));
  const out = join(dir, "out.npz");
  const result = await endosynth(["infer", "dav1", ...tiny("dav1"), video, "-o", out, "--json"], { env });
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  t.is(lines.length, 1);
  const json = JSON.parse(lines[0]);
  const frames = readNpz(out).depth.shape[0];
  t.true(frames > 0 && frames < 40);
  t.like(json, { model: "dav1", backend: "onnxruntime", inputs: [video], inputKind: "video", outputs: [out, join(dir, "out.csv")], frames, dropped: 0, stoppedBy: "end" });
  t.deepEqual(Object.keys(json.latencyMs), ["mean", "p50", "p95", "max"]);
  t.true(json.latencyMs.p50 > 0 && json.latencyMs.max >= json.latencyMs.p95);
  t.is(json.warnings.length, 1);
  t.true(json.warnings[0].startsWith(`${video}: only ${frames} of the 40 frames`), json.warnings[0]);
  t.true(result.stderr.includes(`warning: ${json.warnings[0]}`));
});

test("an existing output is replaced only with --overwrite; the refusal names the file and the flag, before the model loads", async (t) => {
  const { dir, env } = workDir(t);
  const output = join(dir, "depth.npy");
  writeFileSync(output, "keep me");
  const args = ["infer", "dav1", ...tiny("dav1"), fixture("dav1", "input.npy"), "-o", output];
  const refused = await endosynth(args, { env });
  t.is(refused.code, 1);
  t.is(refused.stderr, `endosynth: ${output} already exists: pass --overwrite to replace it\n`);
  t.is(readFileSync(output, "utf8"), "keep me");
  const replaced = await endosynth([...args, "--overwrite", "-q"], { env });
  t.is(replaced.code, 0, replaced.stderr);
  t.deepEqual(readNpy(output).shape, [540, 960]);

  const folder = join(dir, "frames");
  mkdirSync(folder);
  writeFileSync(join(folder, "000003.png"), "");
  const video = join(dir, "clip.mp4");
  testPattern(video, 2);
  const frames = await endosynth(["infer", "dav1", ...tiny("dav1"), video, "-o", folder], { env });
  t.is(frames.code, 1);
  t.is(frames.stderr, `endosynth: ${join(folder, "000003.png")} already exists: pass --overwrite to replace it\n`);
});

test("Ctrl-C on a live source stops it cleanly: exit 0, every output finished, the interruption reported", async (t) => {
  const { dir, env } = workDir(t);
  const out = join(dir, "live.npz");
  const cli = startCli(["infer", "dav1", ...tiny("dav1"), "lavfi:testsrc=size=64x48:rate=25", "-o", out, "--json"], dir, env);
  await whileRunningUntil(cli.child, () => cli.stderr().includes("dav1 (fp32) on onnxruntime"), cli.stderr);
  await sleep(1500);
  cli.child.kill("SIGINT");
  t.is(await cli.exited, 0, cli.stderr());
  t.regex(cli.stderr(), /interrupted: stopping the live source; finishing .*live\.npz/);
  const json = JSON.parse(cli.stdout());
  t.like(json, { inputKind: "live", stoppedBy: "interrupt", outputs: [out, join(dir, "live.csv")] });
  const stack = readNpz(out);
  t.is(stack.depth.shape[0], json.frames);
  t.true(json.frames > 0);
  t.is(csvRows(join(dir, "live.csv")).length, json.frames);
  t.deepEqual(readdirSync(dir).filter((name) => name.endsWith(".tmp")), []);
});

test("Ctrl-C during a video file stops cleanly: exit 130, no output and no temporary file left", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "long.mkv");
  testPattern(video, 300, { size: "160x96", rate: 10, args: ["-c:v", "ffv1"] });
  const cli = startCli(["infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, "depth.mp4")], dir, env);
  await whileRunningUntil(cli.child, () => cli.stderr().includes("dav1 (fp32) on onnxruntime"), cli.stderr);
  await sleep(500);
  cli.child.kill("SIGINT");
  t.is(await cli.exited, 130);
  t.regex(cli.stderr(), /interrupted: stopping; .*depth\.mp4 is not written/);
  t.deepEqual(readdirSync(dir).filter((name) => name !== "cache").sort(), ["long.mkv"]);
});

test("infer refuses what it cannot do, naming the problem, before loading the model, and writes nothing", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "clip.mp4");
  ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i", "sine", "-t", "0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", video]);
  const still = fixture("dav1", "input.npy");
  const cases: [string[], RegExp][] = [
    [["infer", "dav4", "x.png"], /value 'dav4' is invalid for argument 'model'\. Allowed choices are dav1, dav2, endodac, midas/],
    [["infer", "dav1", ...tiny("dav1"), join(dir, "missing.png")], /^endosynth: No such file or folder: .*missing\.png$/m],
    [["infer", "dav1", ...tiny("dav1"), still, fixture("dav2", "input.npy"), "-o", join(dir, "one.png")], /-o must be a folder \(one depth map per input\) or a \.npz/],
    [["infer", "dav1", ...tiny("dav1"), still, fixture("dav2", "input.npy"), "-o", join(dir, "out")], /dav1\/input\.npy and .*dav2\/input\.npy would both be written to .*out\/input\.png/],
    [["infer", "dav1", ...tiny("dav1"), still, "-o", join(dir, "depth.mp4")], /Expected a \.png, \.jpg, \.npy or \.tif file, a \.npz, or a folder, for -o with still inputs but received .*depth\.mp4/],
    [["infer", "dav1", ...tiny("dav1"), still, "--range", "0.2,0.02"], /option '--range <min,max>' argument '0\.2,0\.02' is invalid\. expected two increasing numbers/],
    [["infer", "dav1", ...tiny("dav1"), still, "-o", join(dir, "x.png"), "--ply"], /--ply needs the camera intrinsics: give --fx and --fy/],
    [["infer", "dav1", ...tiny("dav1"), still, "-o", join(dir, "x.png"), "--format", "npy"], /--format npy writes \.npy files, but -o is .*x\.png/],
    [["infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, "depth.avi")], /Cannot write a video to .*depth\.avi: the container \.avi is not supported; use \.mp4, \.m4v, \.mov, \.mkv, \.webm/],
    [["infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, "depth.webm"), "--audio", "copy"], /Cannot copy the aac audio of .*clip\.mp4 into .*depth\.webm \(webm\)/],
    [["infer", "dav1", ...tiny("dav1"), video, "-o", join(dir, "frame.png")], /-o .*frame\.png is one image, but a video gives many frames/],
    [["infer", "dav1", ...tiny("dav1"), "udp://127.0.0.1:9", "--audio", "copy", "-o", join(dir, "live.mp4")], /--audio copy needs a video file as input/],
    [["infer", "dav1", ...tiny("dav1"), "gopher://host/x", "-o", join(dir, "g")], /Unknown source scheme gopher:\/\//],
    [["infer", "dav1", ...tiny("dav1"), video, "--ffmpeg", join(dir, "no-ffmpeg")], /ffmpeg was not found at .*no-ffmpeg \(from options\.ffmpegPath\)/],
  ];
  for (const [args, message] of cases) {
    const result = await endosynth(args, { env, cwd: dir });
    t.not(result.code, 0, args.join(" "));
    t.regex(result.stderr, message, args.join(" "));
    t.false(result.stderr.includes("hashing checkpoint"), `${args.join(" ")}: refused only after loading the model`);
  }
  t.deepEqual(readdirSync(dir).sort(), ["clip.mp4"]);

  writeFileSync(join(dir, "broken.mp4"), "not a video");
  const broken = await endosynth(["infer", "dav1", ...tiny("dav1"), join(dir, "broken.mp4")], { env, cwd: dir });
  t.is(broken.code, 1);
  // The first line printed: the video is probed before the model is loaded ("hashing checkpoint" ...).
  t.true(broken.stderr.startsWith(`endosynth: ${join(dir, "broken.mp4")}: not a video ffprobe can read`), broken.stderr);
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
