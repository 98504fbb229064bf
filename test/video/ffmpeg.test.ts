import test from "ava";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackendUnavailableError, DisposedError, FileFormatError, InputError, RuntimeFailureError } from "../../lib/errors.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { createVideoWriter, probeVideo, readVideoFrames } from "../../lib/video/ffmpeg.js";
import { temporaryDirectory } from "../helpers/fixtures.js";

const WIDTH = 64;
const HEIGHT = 48;
const FRAMES = 6;

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

/** Frame i: a gradient that differs per frame and per channel, so any mix-up shows. */
function knownFrame(i: number, width = WIDTH, height = HEIGHT): NdArray<"uint8"> {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = 3 * (y * width + x);
      data[at] = (x * 4 + i * 20) & 255;
      data[at + 1] = (y * 5 + i * 7) & 255;
      data[at + 2] = (x * y + i * 31) & 255;
    }
  }
  return ndarray<"uint8">(data, [height, width, 3]);
}

/** Encodes raw frames with the ffmpeg command line itself (lossless FFV1), independent of our writer. */
function encodeWithFfmpeg(path: string, frames: NdArray<"uint8">[], fps = 10): void {
  const [height, width] = frames[0].shape;
  const raw = Buffer.concat(frames.map((frame) => frame.data));
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-framerate", String(fps), "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", "bgr0", path], { input: raw });
}

async function readAll(path: string, options?: Parameters<typeof readVideoFrames>[1]): Promise<NdArray<"uint8">[]> {
  const frames: NdArray<"uint8">[] = [];
  for await (const frame of readVideoFrames(path, options)) frames.push(frame);
  return frames;
}

/** A script standing in for ffmpeg: runs `body` with sh. */
function fakeProgram(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test("decodes a lossless video made by the ffmpeg command line into exactly the frames it was made from", async (t) => {
  const path = join(tempDir(t), "known.mkv");
  const frames = Array.from({ length: FRAMES }, (_, i) => knownFrame(i));
  encodeWithFfmpeg(path, frames, 12.5);
  const info = await probeVideo(path);
  t.like(info, { width: WIDTH, height: HEIGHT, fps: 12.5, codec: "ffv1", rotation: 0 });
  const decoded = await readAll(path);
  t.is(decoded.length, FRAMES);
  decoded.forEach((frame, i) => {
    t.deepEqual(frame.shape, [HEIGHT, WIDTH, 3]);
    t.true(Buffer.from(frame.data).equals(Buffer.from(frames[i].data)), `frame ${i}`);
  });
  t.not(decoded[0].data.buffer, decoded[1].data.buffer);
});

test("decodes ffmpeg's testsrc pattern identically to ffmpeg's own rawvideo output", async (t) => {
  const path = join(tempDir(t), "testsrc.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", `testsrc=size=${WIDTH}x${HEIGHT}:rate=25`, "-frames:v", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", path]);
  const reference = execFileSync("ffmpeg", ["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], { maxBuffer: 1 << 26 });
  const info = await probeVideo(path);
  t.like(info, { width: WIDTH, height: HEIGHT, fps: 25, codec: "h264", frameCount: 10 });
  t.true(Math.abs(info.duration! - 0.4) < 1e-6);
  const decoded = await readAll(path);
  t.is(decoded.length, 10);
  t.true(Buffer.concat(decoded.map((frame) => frame.data)).equals(reference));
});

test("a rotated video decodes upright with width and height swapped, as ffmpeg shows it", async (t) => {
  const dir = tempDir(t);
  const plain = join(dir, "plain.mp4");
  const rotated = join(dir, "rotated.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", `testsrc=size=${WIDTH}x${HEIGHT}:rate=10`, "-frames:v", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", plain]);
  execFileSync("ffmpeg", ["-v", "error", "-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated]);
  const info = await probeVideo(rotated);
  t.like(info, { width: HEIGHT, height: WIDTH });
  t.is(Math.abs(info.rotation), 90);
  const decoded = await readAll(rotated);
  t.is(decoded.length, 3);
  t.deepEqual(decoded[0].shape, [WIDTH, HEIGHT, 3]);
});

test("encodes frames losslessly with FFV1 and reads them back exactly; the file appears only on close", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "round.mkv");
  const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 30, codec: "ffv1", pixelFormat: "bgr0" });
  const frames = Array.from({ length: FRAMES }, (_, i) => knownFrame(i));
  for (const frame of frames) await writer.write(frame);
  t.is(writer.framesWritten, FRAMES);
  t.false(existsSync(path));
  await writer.close();
  t.deepEqual(readdirSync(dir), ["round.mkv"]);
  t.like(await probeVideo(path), { width: WIDTH, height: HEIGHT, fps: 30, codec: "ffv1" });
  const decoded = await readAll(path);
  t.is(decoded.length, FRAMES);
  decoded.forEach((frame, i) => t.true(Buffer.from(frame.data).equals(Buffer.from(frames[i].data)), `frame ${i}`));
  await t.throwsAsync(() => writer.write(frames[0]), { instanceOf: DisposedError });
});

test("encodes H.264 mp4 by default, close to the frames within codec loss", async (t) => {
  const path = join(tempDir(t), "default.mp4");
  const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 24, outputArgs: ["-crf", "10"] });
  // Smooth frames: chroma subsampling and DCT lose little on gradients.
  const frames = Array.from({ length: 4 }, (_, i) => {
    const data = new Uint8Array(WIDTH * HEIGHT * 3);
    for (let p = 0; p < WIDTH * HEIGHT; p++) data.fill(60 + i * 30 + (p % WIDTH), 3 * p, 3 * p + 3);
    return ndarray<"uint8">(data, [HEIGHT, WIDTH, 3]);
  });
  for (const frame of frames) await writer.write(frame);
  await writer.close();
  t.like(await probeVideo(path), { codec: "h264", width: WIDTH, height: HEIGHT, fps: 24, frameCount: 4 });
  const decoded = await readAll(path);
  t.is(decoded.length, 4);
  decoded.forEach((frame, i) => {
    let sum = 0;
    for (let k = 0; k < frame.data.length; k++) sum += Math.abs(frame.data[k] - frames[i].data[k]);
    t.true(sum / frame.data.length < 2, `frame ${i}: mean abs difference ${sum / frame.data.length}`);
  });
});

test("abort removes the temporary file and keeps what was at the target", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "keep.mp4");
  writeFileSync(path, "previous");
  const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 10 });
  await writer.write(knownFrame(0));
  await writer.abort();
  await writer.abort();
  t.deepEqual(readdirSync(dir), ["keep.mp4"]);
  await t.throwsAsync(() => writer.close(), { instanceOf: DisposedError });
});

test("leaving an `await using` scope without close aborts the writer", async (t) => {
  const dir = tempDir(t);
  {
    await using writer = await createVideoWriter(join(dir, "scoped.mp4"), { width: WIDTH, height: HEIGHT, fps: 10 });
    await writer.write(knownFrame(0));
  }
  t.deepEqual(readdirSync(dir), []);
});

test("an encoder ffmpeg does not know fails with its message, and no file is left", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "bad.mp4");
  const error = await t.throwsAsync(async () => {
    const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 10, codec: "no-such-encoder" });
    await writer.write(knownFrame(0));
    await writer.close();
  }, { instanceOf: RuntimeFailureError });
  t.regex(error.message, /ffmpeg exited with code \d+ while (encoding|finishing) .*bad\.mp4/);
  t.regex(error.message, /no-such-encoder/);
  t.deepEqual(readdirSync(dir), []);
});

test("frames of the wrong size and odd sizes for yuv420p are refused", async (t) => {
  const dir = tempDir(t);
  await t.throwsAsync(() => createVideoWriter(join(dir, "odd.mp4"), { width: 63, height: 48, fps: 10 }), {
    instanceOf: InputError,
    message: /even width and height for pixel format yuv420p .* received 63x48/,
  });
  await t.throwsAsync(() => createVideoWriter(join(dir, "x.mp4"), { width: WIDTH, height: HEIGHT, fps: 0 }), {
    instanceOf: InputError,
    message: "Expected a positive number of frames per second for options.fps but received 0",
  });
  const writer = await createVideoWriter(join(dir, "size.mp4"), { width: WIDTH, height: HEIGHT, fps: 10 });
  t.teardown(() => writer.abort());
  await t.throwsAsync(() => writer.write(knownFrame(0, 32, 32)), {
    instanceOf: InputError,
    message: /Expected a frame of shape \(48, 64, 3\) for .*size\.mp4 but received \(32, 32, 3\)/,
  });
});

test("a file that is not a video is a FileFormatError carrying ffprobe's message", async (t) => {
  const path = join(tempDir(t), "broken.mp4");
  writeFileSync(path, Buffer.from("this is not a video at all".repeat(100)));
  const error = await t.throwsAsync(() => readAll(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.regex(error.message, /broken\.mp4: not a video ffprobe can read .*Invalid data found when processing input/s);
});

test("a missing video file is an InputError naming it", async (t) => {
  const path = join(tempDir(t), "missing.mp4");
  const error = await t.throwsAsync(() => probeVideo(path), { instanceOf: InputError });
  t.is(error.message, `Video file ${path} does not exist`);
});

test("ffmpeg dying in the middle of decoding reports its exit code and last lines", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "clip.mkv");
  encodeWithFfmpeg(path, Array.from({ length: FRAMES }, (_, i) => knownFrame(i)));
  // Passes on two and a half frames of real output, then dies. The real ffmpeg's own complaints
  // about the pipe `head` closes depend on timing, so they are silenced.
  const crashing = fakeProgram(dir, "ffmpeg", `ffmpeg "$@" 2>/dev/null | head -c ${Math.floor(2.5 * WIDTH * HEIGHT * 3)}\necho "simulated decoder crash" >&2\nexit 3`);
  const frames: NdArray<"uint8">[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const frame of readVideoFrames(path, { ffmpegPath: crashing })) frames.push(frame);
  }, { instanceOf: RuntimeFailureError });
  t.is(frames.length, 2);
  t.regex(error.message, /ffmpeg exited with code 3 while decoding .*clip\.mkv after 2 frames: simulated decoder crash/);
});

test("ffmpeg dying while encoding fails write or close with its exit code and message, leaving no file", async (t) => {
  const dir = tempDir(t);
  const crashing = fakeProgram(dir, "ffmpeg", `head -c 1000 >/dev/null\necho "simulated encoder crash" >&2\nexit 5`);
  const output = join(dir, "out.mp4");
  const writer = await createVideoWriter(output, { width: WIDTH, height: HEIGHT, fps: 10, ffmpegPath: crashing });
  const error = await t.throwsAsync(async () => {
    for (let i = 0; i < 50; i++) await writer.write(knownFrame(i));
    await writer.close();
  }, { instanceOf: RuntimeFailureError });
  t.regex(error.message, /ffmpeg exited with code 5 while (encoding|finishing) .*out\.mp4 after \d+ frames: simulated encoder crash/);
  t.deepEqual(readdirSync(dir), ["ffmpeg"]);
});

test("breaking out of the frames stops ffmpeg early", async (t) => {
  const path = join(tempDir(t), "long.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", `testsrc=size=${WIDTH}x${HEIGHT}:rate=25`, "-frames:v", "500", "-c:v", "libx264", "-pix_fmt", "yuv420p", path]);
  let count = 0;
  for await (const _ of readVideoFrames(path)) if (++count === 2) break;
  t.is(count, 2);
});

test("an ffmpeg path that does not exist is a BackendUnavailableError naming the install commands", async (t) => {
  const path = join(tempDir(t), "clip.mkv");
  encodeWithFfmpeg(path, [knownFrame(0)]);
  const error = await t.throwsAsync(() => readAll(path, { ffmpegPath: "/nonexistent/ffmpeg" }), { instanceOf: BackendUnavailableError });
  t.is(error.code, "ERR_ENDOSYNTH_BACKEND_UNAVAILABLE");
  t.regex(error.message, /^ffmpeg was not found at \/nonexistent\/ffmpeg: .*apt-get install ffmpeg.*brew install ffmpeg.*options\.ffmpegPath/);
});

test("frames can be decoded into buffers the caller provides, one call per frame", async (t) => {
  const path = join(tempDir(t), "ring.mkv");
  const frames = Array.from({ length: 5 }, (_, i) => knownFrame(i));
  encodeWithFfmpeg(path, frames);
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
