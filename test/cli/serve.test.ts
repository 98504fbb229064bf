import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "../server/helpers.js";
import { endosynth } from "../support/cli.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { pathWithFfmpeg, startServeProcess, testPatternVideo } from "./serve_process.js";

function workDir(t: { teardown(fn: () => void): void }): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return { dir: dir.path, env: { ENDOSYNTH_CACHE: join(dir.path, "cache") } };
}

test("serve dav1 answers POST /v1/depth with exactly the array infer writes for the same .npy frame; Ctrl-C stops it with 0", async (t) => {
  const { dir, env } = workDir(t);
  const frame = fixture("dav1", "input.npy");
  const written = join(dir, "depth.npy");
  const infer = await endosynth(["infer", "dav1", "-c", fixture("dav1", "tiny.pth"), frame, "-o", written, "-q"], { env });
  t.is(infer.code, 0, infer.stderr);
  const server = await startServeProcess(t, ["serve", "dav1", "-c", fixture("dav1", "tiny.pth")], env);
  t.like(server.facts, { host: "127.0.0.1", model: "dav1", backend: "onnxruntime", precision: "fp32" });
  t.regex(server.facts.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const response = await fetch(`${server.facts.url}v1/depth`, { method: "POST", body: readFileSync(frame), headers: { "Content-Type": "application/x-npy" } });
  t.is(response.status, 200);
  t.true(Buffer.from(await response.arrayBuffer()).equals(readFileSync(written)));
  t.is(await server.stop("SIGINT"), 0);
  t.regex(server.stderr(), /stopping: answering the requests in progress/);
});

test("serve refuses an address other than loopback without --token, before loading the model", async (t) => {
  const { env } = workDir(t);
  const result = await endosynth(["serve", "dav1", "-c", fixture("dav1", "tiny.pth"), "--host", "0.0.0.0"], { env });
  t.is(result.code, 1);
  t.regex(result.stderr, /^endosynth: Binding to 0\.0\.0\.0 lets other machines send requests: give a token \(options\.token, or --token\)/m);
  t.notRegex(result.stderr, /hashing checkpoint/);
  t.is(result.stdout, "");
});

test("live plays a video to /v1/live viewers at its frame rate and says where it serves; SIGTERM stops it", async (t) => {
  const { dir, env } = workDir(t);
  const video = join(dir, "pattern.mkv");
  testPatternVideo(video, { width: 64, height: 48, fps: 10, frames: 10 });
  const server = await startServeProcess(t, ["live", "endodac", "-c", fixture("endodac", "tiny.pth"), video, "--loop"], env);
  const viewer = new Client(`${server.facts.url.replace("http", "ws")}v1/live`);
  await viewer.opened();
  const frames = await viewer.waitFor((message) => message.header.type === "frame", 3, 60_000);
  const timestamps = frames.map(({ header }) => header.timestamp);
  t.deepEqual(timestamps, [...timestamps].sort((a, b) => a - b));
  t.true(timestamps.every((timestamp, index) => Math.abs(timestamp * 10 - frames[index].header.frame) < 1e-6), JSON.stringify(timestamps));
  t.like(frames[0].header, { width: 64, height: 48 });
  viewer.close();
  t.is(await server.stop("SIGTERM"), 0);
  t.regex(server.stderr(), /playing .*pattern\.mkv \(64x48, 10\.00 fps, looping\)/);
  t.regex(server.stderr(), /^\d+ frames, \d+ inferred, \d+ dropped, 0 failed$/m);
});

test("live plays a live source (ffmpeg's test pattern device) to /v1/live viewers, newest frame first", async (t) => {
  const { env } = workDir(t);
  const server = await startServeProcess(t, ["live", "dav1", "-c", fixture("dav1", "tiny.pth"), "lavfi:testsrc=size=64x48:rate=25"], { ...env, PATH: pathWithFfmpeg() });
  const viewer = new Client(`${server.facts.url.replace("http", "ws")}v1/live`);
  await viewer.opened();
  const frames = await viewer.waitFor((message) => message.header.type === "frame", 3, 60_000);
  const timestamps = frames.map(({ header }) => header.timestamp);
  t.deepEqual(timestamps, [...timestamps].sort((a, b) => a - b));
  t.like(frames[0].header, { width: 64, height: 48 });
  viewer.close();
  t.is(await server.stop("SIGTERM"), 0);
  t.regex(server.stderr(), /playing lavfi:testsrc=size=64x48:rate=25 \(live\)/);
});

test("live refuses --loop for a live source, before loading the model", async (t) => {
  const { env } = workDir(t);
  const result = await endosynth(["live", "dav1", "-c", fixture("dav1", "tiny.pth"), "udp://127.0.0.1:5000", "--loop"], { env: { ...env, PATH: pathWithFfmpeg() } });
  t.is(result.code, 1);
  t.regex(result.stderr, /--loop applies to video files, not to a live source \(udp:\/\/127\.0\.0\.1:5000\)/);
  t.notRegex(result.stderr, /hashing checkpoint/);
});
