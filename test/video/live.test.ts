// Live sources end to end: ffmpeg sends its testsrc pattern in real time to a loopback address
// (UDP, TCP, RTP, RTP described by SDP, MJPEG over HTTP) and readVideo receives it. No camera and
// no network beyond 127.0.0.1.
import test from "ava";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isLiveSource, readVideo, type VideoFrame } from "../../lib/video/index.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { freeTcpPort, freeUdpPort, programs, startSender, stopProcess } from "./helpers.js";

const dir = temporaryDirectory();
test.after.always(dir.cleanup);

/** Generous hang guard: a live test that gets no frames fails instead of waiting for the runner. */
const GUARD_MS = 60_000;

async function firstFrames(source: string, count: number, options: Parameters<typeof readVideo>[1] = {}, consumerMs = 0): Promise<VideoFrame[]> {
  const frames: VideoFrame[] = [];
  const reading = (async () => {
    for await (const frame of readVideo(source, options)) {
      frames.push(frame);
      if (frames.length === count) break;
      if (consumerMs > 0) await sleep(consumerMs);
    }
  })();
  const guard = sleep(GUARD_MS, "timeout");
  if ((await Promise.race([reading.then(() => "done"), guard])) === "timeout") throw new Error(`no ${count} frames from ${source} within ${GUARD_MS} ms (got ${frames.length})`);
  await reading;
  return frames;
}

/** The frames are the sender's pattern, in order, with increasing timestamps. */
function assertLiveFrames(t: import("ava").ExecutionContext, frames: VideoFrame[], size: [number, number], count: number): void {
  t.is(frames.length, count);
  for (const [i, { frame, pts, frameNumber }] of frames.entries()) {
    t.deepEqual(frame.shape, [size[1], size[0], 3]);
    if (i > 0) {
      t.true(pts > frames[i - 1].pts, `pts ${frames[i - 1].pts} then ${pts}`);
      t.true(frameNumber > frames[i - 1].frameNumber);
    }
  }
  // testsrc is colourful: a decoded frame is not blank.
  t.true(new Set(frames.at(-1)!.frame.data).size > 20);
}

function teardownSender(t: import("ava").ExecutionContext, sender: ChildProcess): void {
  t.teardown(() => stopProcess(sender));
}

test("UDP MPEG-TS: frames arrive; a slow consumer gets the newest ones and the drops are counted", async (t) => {
  const port = await freeUdpPort();
  teardownSender(t, startSender("mpegts", `udp://127.0.0.1:${port}?pkt_size=1316`));
  const frames = await firstFrames(`udp://127.0.0.1:${port}`, 8, {}, 150);
  assertLiveFrames(t, frames, [160, 96], 8);
  const last = frames.at(-1)!;
  t.true(last.dropped > 0, `dropped ${last.dropped}`);
  t.is(last.dropped, last.frameNumber - frames[0].frameNumber - 7);
});

test("UDP with queue block keeps every frame in order", async (t) => {
  const port = await freeUdpPort();
  teardownSender(t, startSender("mpegts", `udp://127.0.0.1:${port}?pkt_size=1316`));
  const frames = await firstFrames(`udp://127.0.0.1:${port}`, 12, { queue: "block" });
  assertLiveFrames(t, frames, [160, 96], 12);
  t.deepEqual(frames.map(({ frameNumber }) => frameNumber), [...Array(12).keys()]);
  t.true(frames.every(({ dropped }) => dropped === 0));
});

test("TCP MPEG-TS into a listening endosynth", async (t) => {
  const port = await freeTcpPort();
  const reading = firstFrames(`tcp://127.0.0.1:${port}?listen=1`, 6);
  // The sender connects as soon as ffmpeg listens: retry while the connection is refused.
  let sender: ChildProcess | undefined;
  let done = false;
  const sending = (async () => {
    for (let attempt = 0; attempt < 200 && !done; attempt++) {
      sender = startSender("mpegts", `tcp://127.0.0.1:${port}`);
      const code = await new Promise<number | null>((resolve) => sender!.once("close", resolve));
      if (code === 0 || done) return;
      await sleep(100);
    }
  })();
  t.teardown(async () => {
    done = true;
    if (sender) await stopProcess(sender);
    await sending;
  });
  assertLiveFrames(t, await reading, [160, 96], 6);
});

test("RTP (MPEG-TS payload) from an rtp:// address", async (t) => {
  const port = await freeUdpPort(true);
  teardownSender(t, startSender("rtp_mpegts", `rtp://127.0.0.1:${port}`));
  assertLiveFrames(t, await firstFrames(`rtp://127.0.0.1:${port}`, 6), [160, 96], 6);
});

test("RTP described by an SDP file (Motion JPEG payload)", async (t) => {
  const port = await freeUdpPort(true);
  const sdp = join(dir.path, "stream.sdp");
  teardownSender(t, startSender("rtp", `rtp://127.0.0.1:${port}`, { codec: ["-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p"], extra: ["-sdp_file", sdp] }));
  for (let waited = 0; !existsSync(sdp) && waited < GUARD_MS; waited += 50) await sleep(50);
  assertLiveFrames(t, await firstFrames(sdp, 6), [160, 96], 6);
});

test("MJPEG over HTTP (multipart/x-mixed-replace), as IP cameras serve it", async (t) => {
  const server = createServer((request, response) => {
    const sender = spawn(programs.ffmpeg, ["-v", "error", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=25", "-t", "60", "-c:v", "mjpeg", "-f", "mpjpeg", "pipe:1"], { stdio: ["ignore", "pipe", "ignore"] });
    response.writeHead(200, { "Content-Type": "multipart/x-mixed-replace;boundary=ffmpeg" });
    sender.stdout.pipe(response);
    request.on("close", () => sender.kill("SIGKILL"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  assertLiveFrames(t, await firstFrames(`http://127.0.0.1:${port}/stream.mjpg`, 5), [160, 96], 5);
  server.closeAllConnections();
});

test("a generated test pattern (lavfi:) is a live source too, with no network", async (t) => {
  assertLiveFrames(t, await firstFrames("lavfi:testsrc=size=64x48:rate=25", 4), [64, 48], 4);
});

const videoDevice = existsSync("/dev") ? readdirSync("/dev").find((name) => /^video\d+$/.test(name)) : undefined;
const v4l2Title = "V4L2: frames from a capture device";
if (videoDevice) {
  test(v4l2Title, async (t) => {
    const frames = await firstFrames(`/dev/${videoDevice}`, 3);
    t.is(frames.length, 3);
    t.is(frames[0].frame.shape[2], 3);
  });
} else {
  test.skip(`${v4l2Title} (skipped: this machine has no /dev/videoN)`, () => undefined);
}

test("which strings are live sources", (t) => {
  for (const live of ["udp://127.0.0.1:5000", "tcp://host:1", "RTP://h:2", "rtsp://cam/stream", "rtsps://cam/s", "http://cam/video.mjpg", "https://cdn/live.m3u8", "srt://h:1", "rtmp://h/app", "/dev/video0", "stream.sdp", "avfoundation:0", "dshow:video=USB Camera", "v4l2:/dev/video2", "lavfi:testsrc"]) {
    t.true(isLiveSource(live), live);
  }
  for (const file of ["clip.mp4", "/data/run.mkv", "C:\\videos\\clip.mp4", "file:///tmp/a.mp4", "a:b.mp4", "/dev/sda"]) t.false(isLiveSource(file), file);
});
