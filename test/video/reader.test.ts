import test from "ava";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbortError, FileFormatError, InputError, RuntimeFailureError } from "../../lib/errors.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { readVideo, readVideoFrames, type VideoFrame, type VideoWarning } from "../../lib/video/index.js";
import { testFolder } from "../support/fixtures.js";
import { encodeLossless, ffmpeg, knownFrame, probedFrameTimes, programs, testPattern } from "./helpers.js";

const WIDTH = 64;
const HEIGHT = 48;

async function readAll(path: string, options?: Parameters<typeof readVideo>[1]): Promise<VideoFrame[]> {
  const frames: VideoFrame[] = [];
  for await (const frame of readVideo(path, options)) frames.push(frame);
  return frames;
}

test("decodes a lossless video made by the ffmpeg command line into exactly the frames it was made from", async (t) => {
  const path = join(testFolder(t), "known.mkv");
  const frames = Array.from({ length: 6 }, (_, i) => knownFrame(i, WIDTH, HEIGHT));
  encodeLossless(path, frames, 12.5);
  const decoded: NdArray<"uint8">[] = [];
  for await (const frame of readVideoFrames(path)) decoded.push(frame);
  t.is(decoded.length, 6);
  decoded.forEach((frame, i) => {
    t.deepEqual(frame.shape, [HEIGHT, WIDTH, 3]);
    t.true(Buffer.from(frame.data).equals(Buffer.from(frames[i].data)), `frame ${i}`);
  });
  t.not(decoded[0].data.buffer, decoded[1].data.buffer);
});

test("decodes ffmpeg's testsrc pattern identically to ffmpeg's own rawvideo output, with the frames' timestamps", async (t) => {
  const path = join(testFolder(t), "testsrc.mp4");
  testPattern(path, 10);
  const reference = ffmpeg(["-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]);
  const decoded = await readAll(path);
  t.is(decoded.length, 10);
  t.true(Buffer.concat(decoded.map(({ frame }) => frame.data)).equals(reference));
  t.deepEqual(decoded.map(({ frameNumber }) => frameNumber), [...Array(10).keys()]);
  t.deepEqual(decoded.map(({ pts }) => pts), probedFrameTimes(path));
  t.deepEqual(decoded.map(({ pts }) => Math.round(pts * 25)), [...Array(10).keys()]);
  t.true(decoded.every(({ dropped }) => dropped === 0));
  t.true(decoded.every(({ capturedAt }, i) => capturedAt <= performance.now() && (i === 0 || capturedAt >= decoded[i - 1].capturedAt)));
});

test("a variable frame rate keeps each frame's own timestamp", async (t) => {
  const path = join(testFolder(t), "vfr.mkv");
  // Frames 0-4 every 40 ms, then a 0.56 s gap: timestamps set by ffmpeg itself, not by us.
  testPattern(path, 10, { args: ["-vf", "setpts='(N*0.04+gte(N,5)*0.52)/TB'", "-vsync", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p"] });
  const decoded = await readAll(path);
  const expected = [0, 0.04, 0.08, 0.12, 0.16, 0.72, 0.76, 0.8, 0.84, 0.88];
  t.deepEqual(probedFrameTimes(path), expected);
  t.deepEqual(decoded.map(({ pts }) => pts), expected);
});

test("a rotated video decodes upright with width and height swapped, as ffmpeg shows it", async (t) => {
  const dir = testFolder(t);
  const plain = join(dir, "plain.mp4");
  const rotated = join(dir, "rotated.mp4");
  testPattern(plain, 3, { rate: 10 });
  ffmpeg(["-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated]);
  const decoded = await readAll(rotated);
  t.is(decoded.length, 3);
  t.deepEqual(decoded[0].frame.shape, [WIDTH, HEIGHT, 3]);
});

test("a truncated file ends with one warning saying how many of its frames were read", async (t) => {
  const dir = testFolder(t);
  for (const [name, args] of [
    ["clip.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]],
    ["clip.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]],
  ] as const) {
    const whole = join(dir, name);
    testPattern(whole, 50, { size: "320x240", args: [...args] });
    const cut = join(dir, `cut-${name}`);
    const bytes = readFileSync(whole);
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const warnings: VideoWarning[] = [];
    const frames = await readAll(cut, { onWarning: (warning) => warnings.push(warning) });
    t.true(frames.length > 0 && frames.length < 45, `${name}: ${frames.length} frames`);
    t.is(warnings.length, 1, name);
    t.like(warnings[0], { kind: "incomplete", source: cut, framesRead: frames.length, framesExpected: 50 });
    t.true(warnings[0].message.startsWith(`${cut}: only ${frames.length} of the 50 frames`), warnings[0].message);
    const intact: VideoWarning[] = [];
    t.is((await readAll(whole, { onWarning: (warning) => intact.push(warning) })).length, 50);
    t.deepEqual(intact, [], name);
  }
});

test("corrupt data inside a file is reported with ffmpeg's errors; the frames it could decode still come", async (t) => {
  const dir = testFolder(t);
  const whole = join(dir, "clip.mkv");
  testPattern(whole, 50, { args: ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5"] });
  const bytes = Buffer.from(readFileSync(whole));
  for (let i = Math.floor(bytes.length / 3); i < Math.floor(bytes.length / 3) + 400; i++) bytes[i] ^= 0x5a;
  const corrupt = join(dir, "corrupt.mkv");
  writeFileSync(corrupt, bytes);
  const warnings: VideoWarning[] = [];
  const frames = await readAll(corrupt, { onWarning: (warning) => warnings.push(warning) });
  t.true(frames.length > 5, `${frames.length} frames`);
  t.is(warnings.length, 1);
  t.regex(warnings[0].message, /ffmpeg reported \d+ error\(s\)/);
  t.is(warnings[0].framesRead, frames.length);
});

test("duration reads only that many seconds", async (t) => {
  const path = join(testFolder(t), "long.mp4");
  testPattern(path, 50);
  const frames = await readAll(path, { duration: 0.4 });
  t.is(frames.length, 10);
});

test("queue drop keeps only the newest frame while the consumer is busy, and counts the dropped ones", async (t) => {
  const path = join(testFolder(t), "clip.mkv");
  testPattern(path, 60, { args: ["-c:v", "ffv1"] });
  const frames: VideoFrame[] = [];
  for await (const frame of readVideo(path, { queue: "drop" })) {
    frames.push(frame);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  const last = frames.at(-1)!;
  t.true(frames.length < 60 && last.dropped > 0, `${frames.length} delivered, ${last.dropped} dropped`);
  t.is(frames.length + last.dropped, 60);
  t.is(last.frameNumber, 59);
  t.true(frames.every((frame, i) => i === 0 || (frame.frameNumber > frames[i - 1].frameNumber && frame.dropped >= frames[i - 1].dropped)));
  t.true(frames.every((frame) => frame.dropped === frame.frameNumber - frames.indexOf(frame)));
});

test("aborting the signal stops ffmpeg and ends the frames with an AbortError", async (t) => {
  const path = join(testFolder(t), "long.mp4");
  testPattern(path, 200);
  const controller = new AbortController();
  let count = 0;
  const error = await t.throwsAsync(async () => {
    for await (const _ of readVideo(path, { signal: controller.signal })) if (++count === 3) controller.abort();
  }, { instanceOf: AbortError });
  t.regex(error.message, /was aborted after \d+ frames/);
  t.true(count >= 3 && count < 200);
});

test("breaking out of the frames stops ffmpeg early", async (t) => {
  const path = join(testFolder(t), "long.mp4");
  testPattern(path, 500);
  let count = 0;
  for await (const _ of readVideoFrames(path)) if (++count === 2) break;
  t.is(count, 2);
});

test("frames can be decoded into buffers the caller provides, one call per frame", async (t) => {
  const path = join(testFolder(t), "ring.mkv");
  const frames = Array.from({ length: 5 }, (_, i) => knownFrame(i, WIDTH, HEIGHT));
  encodeLossless(path, frames);
  const ring = [0, 1, 2].map(() => ndarray<"uint8">(new Uint8Array(WIDTH * HEIGHT * 3), [HEIGHT, WIDTH, 3]));
  const sizes: number[][] = [];
  let next = 0;
  const allocate = (height: number, width: number) => {
    sizes.push([height, width]);
    return ring[next++ % ring.length];
  };
  let i = 0;
  for await (const frame of readVideoFrames(path, { allocate })) {
    t.is(frame, ring[i % ring.length]);
    t.true(Buffer.from(frame.data).equals(Buffer.from(frames[i].data)), `frame ${i}`);
    i++;
  }
  t.is(i, 5);
  t.deepEqual(sizes, new Array(5).fill([HEIGHT, WIDTH]));
  const wrong = () => ndarray<"uint8">(new Uint8Array(12), [2, 2, 3]);
  await t.throwsAsync(() => readAll(path, { allocate: wrong }), { instanceOf: InputError, message: "Expected shape [48, 64, 3] for the frame from options.allocate but received [2, 2, 3]" });
});

test("a file that is not a video is a FileFormatError carrying the prober's message", async (t) => {
  const path = join(testFolder(t), "broken.mp4");
  writeFileSync(path, Buffer.from("this is not a video at all".repeat(100)));
  const error = await t.throwsAsync(() => readAll(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.regex(error.message, /broken\.mp4: not a video ffprobe can read .*Invalid data found when processing input/s);
});

test("ffmpeg dying in the middle of decoding reports its exit code and last lines", async (t) => {
  const dir = testFolder(t);
  const path = join(dir, "clip.mkv");
  encodeLossless(path, Array.from({ length: 6 }, (_, i) => knownFrame(i, WIDTH, HEIGHT)));
  // Passes on two and a half frames of the real ffmpeg's output (and all it says), then dies.
  const crashing = join(dir, "ffmpeg");
  writeFileSync(crashing, `#!/bin/sh\n"${programs.ffmpeg}" "$@" | head -c ${Math.floor(2.5 * WIDTH * HEIGHT * 3)}\necho "simulated decoder crash" >&2\nexit 3\n`);
  chmodSync(crashing, 0o755);
  const frames: VideoFrame[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const frame of readVideo(path, { ffmpegPath: crashing })) frames.push(frame);
  }, { instanceOf: RuntimeFailureError });
  t.is(frames.length, 2);
  t.regex(error.message, /^ffmpeg exited with code 3 while decoding .*clip\.mkv after 2 frames: [\s\S]*simulated decoder crash$/);
});

test("bad calls are refused synchronously: a missing file, an unknown scheme, bad options", (t) => {
  const dir = testFolder(t);
  const clip = join(dir, "clip.mkv");
  writeFileSync(clip, "");
  t.throws(() => readVideo(join(dir, "missing.mp4")), { instanceOf: InputError, message: `Video file ${join(dir, "missing.mp4")} does not exist` });
  t.throws(() => readVideo(dir), { instanceOf: InputError, message: /is a directory/ });
  t.throws(() => readVideo("gopher://host/clip"), { instanceOf: InputError, message: /^Unknown source scheme gopher:\/\/ .*udp:\/\/, tcp:\/\// });
  t.throws(() => readVideo(clip, { queue: "newest" as never }), { instanceOf: InputError, message: 'Expected one of "block", "drop" for options.queue but received "newest"' });
  t.throws(() => readVideo(clip, { duration: -1 }), { instanceOf: InputError, message: "Expected a positive number of seconds for options.duration but received -1" });
  t.throws(() => readVideo(clip, { inputArgs: "-re" as never }), { instanceOf: InputError, message: /options\.inputArgs/ });
  t.throws(() => readVideo(clip, { onWarning: 1 as never }), { instanceOf: InputError, message: /options\.onWarning/ });
  t.throws(() => readVideo(clip, { fps: 1 } as never), { instanceOf: InputError, message: /Unknown option "fps"/ });
});
