import test from "ava";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DisposedError, InputError, RuntimeFailureError } from "../../lib/errors.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { checkAudioCopy, createVideoWriter, probeVideo, readVideo, readVideoFrames, videoEncodingFor } from "../../lib/video/index.js";
import { testFolder } from "../support/fixtures.js";
import { ffmpeg, knownFrame, probedFrameTimes, testPattern } from "./helpers.js";

const WIDTH = 64;
const HEIGHT = 48;

async function decodeAll(path: string): Promise<NdArray<"uint8">[]> {
  const frames: NdArray<"uint8">[] = [];
  for await (const frame of readVideoFrames(path)) frames.push(frame);
  return frames;
}

/** A frame of one flat colour per channel: chroma subsampling and DCT lose almost nothing on it. */
function flatFrame(value: number, width = WIDTH, height = HEIGHT): NdArray<"uint8"> {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set([value, 255 - value, (value * 3) & 255], 3 * p);
  return ndarray<"uint8">(data, [height, width, 3]);
}

function meanAbsDifference(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += Math.abs(a[k] - b[k]);
  return sum / a.length;
}

test("encodes frames losslessly with FFV1 and reads them back exactly; the file appears only on close", async (t) => {
  const dir = testFolder(t);
  const path = join(dir, "round.mkv");
  const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 30, codec: "ffv1", pixelFormat: "bgr0" });
  const frames = Array.from({ length: 6 }, (_, i) => knownFrame(i, WIDTH, HEIGHT));
  for (const frame of frames) await writer.write(frame);
  t.is(writer.framesWritten, 6);
  t.false(existsSync(path));
  await writer.close();
  t.deepEqual(readdirSync(dir), ["round.mkv"]);
  t.like(await probeVideo(path), { width: WIDTH, height: HEIGHT, codec: "ffv1" });
  const decoded = await decodeAll(path);
  t.is(decoded.length, 6);
  decoded.forEach((frame, i) => t.true(Buffer.from(frame.data).equals(Buffer.from(frames[i].data)), `frame ${i}`));
  t.deepEqual(probedFrameTimes(path).map((time) => Math.round(time * 30)), [0, 1, 2, 3, 4, 5]);
  await t.throwsAsync(() => writer.write(frames[0]), { instanceOf: DisposedError });
});

test("the codec follows the container: .webm is VP9, .mp4/.m4v/.mov/.mkv are H.264; every frame is kept", async (t) => {
  const dir = testFolder(t);
  for (const [name, codec] of [["a.webm", "vp9"], ["a.mp4", "h264"], ["a.m4v", "h264"], ["a.mov", "h264"], ["a.mkv", "h264"]] as const) {
    const path = join(dir, name);
    const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 24 });
    const frames = [40, 100, 160, 220].map((value) => flatFrame(value));
    for (const frame of frames) await writer.write(frame);
    await writer.close();
    t.like(await probeVideo(path), { codec, width: WIDTH, height: HEIGHT }, name);
    const decoded = await decodeAll(path);
    t.is(decoded.length, 4, name);
    decoded.forEach((frame, i) => t.true(meanAbsDifference(frame.data, frames[i].data) < 3, `${name} frame ${i}`));
  }
});

test("an unsupported container is refused at once, naming the supported ones", (t) => {
  for (const name of ["out.avi", "out.gif", "out"]) {
    t.throws(() => createVideoWriter(join("/nonexistent", name), { width: WIDTH, height: HEIGHT, fps: 10 }), {
      instanceOf: InputError,
      message: /^Cannot write a video to .*: (the container \.\w+ is not supported|no extension); use \.mp4, \.m4v, \.mov, \.mkv, \.webm \(\.webm is VP9, the others H\.264\)$/,
    });
  }
  t.deepEqual(videoEncodingFor("x.WEBM").codec, "libvpx-vp9");
  t.deepEqual(videoEncodingFor("x.mkv", "ffv1"), { container: "matroska", codec: "ffv1", codecArgs: [] });
});

test("odd sizes are padded to even with black for yuv420p; yuv444p keeps them", async (t) => {
  const dir = testFolder(t);
  const frame = flatFrame(120, 63, 47);
  const padded = join(dir, "padded.mp4");
  const writer = await createVideoWriter(padded, { width: 63, height: 47, fps: 10 });
  await writer.write(frame);
  await writer.close();
  t.like(await probeVideo(padded), { width: 64, height: 48 });
  const [decoded] = await decodeAll(padded);
  const inside = new Uint8Array(63 * 47 * 3);
  for (let y = 0; y < 47; y++) inside.set(decoded.data.subarray(y * 64 * 3, y * 64 * 3 + 63 * 3), y * 63 * 3);
  t.true(meanAbsDifference(inside, frame.data) < 3);
  const corner = decoded.data.subarray((47 * 64 + 63) * 3, (47 * 64 + 64) * 3);
  t.true([...corner].every((value) => value < 24), `bottom-right pixel ${[...corner]}`);

  const exact = join(dir, "exact.mkv");
  const keeper = await createVideoWriter(exact, { width: 63, height: 47, fps: 10, pixelFormat: "yuv444p" });
  await keeper.write(frame);
  await keeper.close();
  t.like(await probeVideo(exact), { width: 63, height: 47 });
  t.true(meanAbsDifference((await decodeAll(exact))[0].data, frame.data) < 3);
});

test("timestamps are kept: a variable frame rate and gaps survive in every container", async (t) => {
  const dir = testFolder(t);
  const times = [5, 5.04, 5.1, 5.13, 5.5, 5.51, 5.6];
  for (const name of ["vfr.mp4", "vfr.mov", "vfr.mkv", "vfr.webm"]) {
    const path = join(dir, name);
    const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 25 });
    for (const [i, time] of times.entries()) await writer.write(flatFrame(30 * i), time);
    await writer.close();
    const expected = times.map((time) => time - times[0]);
    const read = [];
    for await (const { pts } of readVideo(path)) read.push(pts);
    t.is(read.length, times.length, name);
    read.forEach((pts, i) => t.true(Math.abs(pts - expected[i]) < 1.5e-3, `${name} frame ${i}: ${pts} vs ${expected[i]}`));
    t.deepEqual(probedFrameTimes(path).slice(0, times.length).map((time) => Math.round(time * 1000)), expected.map((time) => Math.round(time * 1000)), name);
  }
});

test("timestamps that do not increase are refused", async (t) => {
  const writer = await createVideoWriter(join(testFolder(t), "x.mkv"), { width: WIDTH, height: HEIGHT, fps: 25 });
  t.teardown(() => writer.abort());
  await writer.write(flatFrame(1), 1);
  await t.throwsAsync(() => writer.write(flatFrame(2), 1), { instanceOf: InputError, message: /Expected timestamps that increase .* frame 1 of .*x\.mkv has pts 1 s/ });
  await t.throwsAsync(() => writer.write(flatFrame(2), Number.NaN), { instanceOf: InputError, message: "Expected a finite number of seconds for pts but received NaN" });
});

test("--audio copy: the source's audio goes into the output unchanged, or is refused where the container cannot hold it", async (t) => {
  const dir = testFolder(t);
  const source = join(dir, "with-audio.mp4");
  ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", source]);
  t.is((await probeVideo(source)).audioCodec, "aac");
  t.true(await checkAudioCopy(source, join(dir, "out.mkv")));
  await t.throwsAsync(() => checkAudioCopy(source, join(dir, "out.webm")), { instanceOf: InputError, message: /^Cannot copy the aac audio of .*with-audio\.mp4 into .*out\.webm \(webm\): .*\.mkv takes any audio/ });
  const silent = join(dir, "silent.mp4");
  testPattern(silent, 3);
  t.false(await checkAudioCopy(silent, join(dir, "out.mp4")));

  const output = join(dir, "out.mp4");
  const writer = await createVideoWriter(output, { width: WIDTH, height: HEIGHT, fps: 10, audioFrom: source });
  for (let i = 0; i < 10; i++) await writer.write(flatFrame(20 * i));
  await writer.close();
  const info = await probeVideo(output);
  t.is(info.audioCodec, "aac");
  t.is((await decodeAll(output)).length, 10);
});

test("abort removes the temporary file and keeps what was at the target; leaving an `await using` scope aborts", async (t) => {
  const dir = testFolder(t);
  const path = join(dir, "keep.mp4");
  writeFileSync(path, "previous");
  const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 10 });
  await writer.write(flatFrame(0));
  await writer.abort();
  await writer.abort();
  t.deepEqual(readdirSync(dir), ["keep.mp4"]);
  await t.throwsAsync(() => writer.close(), { instanceOf: DisposedError });
  {
    await using scoped = await createVideoWriter(join(dir, "scoped.mp4"), { width: WIDTH, height: HEIGHT, fps: 10 });
    await scoped.write(flatFrame(0));
  }
  t.deepEqual(readdirSync(dir), ["keep.mp4"]);
});

test("an encoder ffmpeg does not know fails with its message, and no file is left", async (t) => {
  const dir = testFolder(t);
  const path = join(dir, "bad.mkv");
  const error = await t.throwsAsync(async () => {
    const writer = await createVideoWriter(path, { width: WIDTH, height: HEIGHT, fps: 10, codec: "no-such-encoder" });
    await writer.write(flatFrame(0));
    await writer.close();
  }, { instanceOf: RuntimeFailureError });
  t.regex(error.message, /ffmpeg exited with code \d+ while (encoding|finishing) .*bad\.mkv after \d+ frames/);
  t.regex(error.message, /no-such-encoder/);
  t.deepEqual(readdirSync(dir), []);
});

test("ffmpeg dying while encoding fails write or close with its exit code and message, leaving no file", async (t) => {
  const dir = testFolder(t);
  const crashing = join(dir, "ffmpeg");
  writeFileSync(crashing, `#!/bin/sh\nhead -c 1000 >/dev/null\necho "simulated encoder crash" >&2\nexit 5\n`);
  chmodSync(crashing, 0o755);
  const output = join(dir, "out.mp4");
  const writer = await createVideoWriter(output, { width: WIDTH, height: HEIGHT, fps: 10, ffmpegPath: crashing });
  const error = await t.throwsAsync(async () => {
    for (let i = 0; i < 50; i++) await writer.write(flatFrame(i));
    await writer.close();
  }, { instanceOf: RuntimeFailureError });
  t.regex(error.message, /ffmpeg exited with code 5 while (encoding|finishing) .*out\.mp4 after \d+ frames: simulated encoder crash/);
  t.deepEqual(readdirSync(dir), ["ffmpeg"]);
});

test("bad options and frames are refused: sizes, rate, frame shape", async (t) => {
  const dir = testFolder(t);
  t.throws(() => createVideoWriter(join(dir, "x.mp4"), { width: WIDTH, height: HEIGHT, fps: 0 }), {
    instanceOf: InputError,
    message: "Expected a positive number of frames per second for options.fps but received 0",
  });
  t.throws(() => createVideoWriter(join(dir, "x.mp4"), { width: 0, height: HEIGHT, fps: 1 }), { instanceOf: InputError, message: /options\.width/ });
  t.throws(() => createVideoWriter(join(dir, "x.mp4"), { width: 2, height: 2, fps: 1, audioFrom: join(dir, "none.mp4") }), { instanceOf: InputError, message: /does not exist/ });
  const writer = await createVideoWriter(join(dir, "size.mp4"), { width: WIDTH, height: HEIGHT, fps: 10 });
  t.teardown(() => writer.abort());
  await t.throwsAsync(() => writer.write(knownFrame(0, 32, 32)), {
    instanceOf: InputError,
    message: /Expected a frame of shape \(48, 64, 3\) for .*size\.mp4 but received \(32, 32, 3\)/,
  });
});
