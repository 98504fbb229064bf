import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { probeVideo } from "../../lib/video/index.js";
import { probeWith } from "../../lib/video/probe.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { ffmpeg, programs, testPattern } from "./helpers.js";

const dir = temporaryDirectory();
test.after.always(dir.cleanup);
const withoutFfprobe = { ffmpeg: programs.ffmpeg, ffmpegOrigin: programs.ffmpegOrigin };

const mp4 = join(dir.path, "clip.mp4");
testPattern(mp4, 10, { size: "160x96" });
const mkv = join(dir.path, "clip.mkv");
testPattern(mkv, 12, { size: "64x48", rate: 30000 / 1001, args: ["-c:v", "ffv1"] });
const rotated = join(dir.path, "rotated.mp4");
ffmpeg(["-i", mp4, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated]);
const withAudio = join(dir.path, "audio.mkv");
ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i", "sine", "-t", "1", "-c:v", "ffv1", "-c:a", "flac", withAudio]);

test("ffprobe reads size, rate, frame count, duration, codec, rotation and audio", async (t) => {
  t.deepEqual(await probeVideo(mp4), { width: 160, height: 96, fps: 25, frameCount: 10, duration: 0.4, codec: "h264", rotation: 0 });
  t.like(await probeVideo(mkv), { width: 64, height: 48, codec: "ffv1", rotation: 0 });
  t.true(Math.abs((await probeVideo(mkv)).fps - 29.97) < 0.01);
  t.like(await probeVideo(rotated), { width: 96, height: 160 });
  t.is(Math.abs((await probeVideo(rotated)).rotation), 90);
  t.like(await probeVideo(withAudio), { audioCodec: "flac", codec: "ffv1" });
});

test("without ffprobe, ffmpeg alone finds the same facts, except the frame count", async (t) => {
  for (const path of [mp4, mkv, rotated, withAudio]) {
    const { frameCount: _, ...expected } = await probeVideo(path);
    const found = await probeWith(withoutFfprobe, path);
    t.is(found.frameCount, undefined);
    t.true(Math.abs(found.fps - expected.fps) < 0.01, path);
    t.true(Math.abs((found.duration ?? 0) - (expected.duration ?? 0)) < 0.02, path);
    t.deepEqual({ ...found, fps: 0, duration: 0 }, { ...expected, fps: 0, duration: 0 }, path);
  }
});

test("a missing file is refused synchronously; one that is not a video is a FileFormatError from either prober", async (t) => {
  t.throws(() => probeVideo(join(dir.path, "missing.mp4")), { instanceOf: InputError, message: /missing\.mp4 does not exist$/ });
  const junk = join(dir.path, "junk.mp4");
  writeFileSync(junk, "not a video".repeat(50));
  await t.throwsAsync(() => probeVideo(junk), { instanceOf: FileFormatError, message: /junk\.mp4: not a video ffprobe can read/ });
  await t.throwsAsync(() => probeWith(withoutFfprobe, junk), { instanceOf: FileFormatError, message: /junk\.mp4: not a video ffmpeg can read: .*Invalid data/s });
});
