// A file of its own: it empties PATH for its whole process, so ffmpeg and ffprobe cannot be found.
import test from "ava";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { BackendUnavailableError } from "../../lib/errors.js";
import { createVideoWriter, probeVideo } from "../../lib/video/ffmpeg.js";
import { temporaryDirectory } from "../helpers/fixtures.js";

const dir = temporaryDirectory();
test.after.always(dir.cleanup);
const video = join(dir.path, "clip.mp4");
execFileSync("/usr/bin/env", ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5", "-frames:v", "2", video]);
process.env.PATH = join(dir.path, "empty-bin");

test("without ffprobe on PATH, probing says so and names the install commands", async (t) => {
  const error = await t.throwsAsync(() => probeVideo(video), { instanceOf: BackendUnavailableError });
  t.is(
    error.message,
    "ffprobe was not found on PATH: install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS) (ffprobe comes with ffmpeg), or pass options.ffprobePath",
  );
});

test("without ffmpeg on PATH, creating a writer says so and names the install commands", async (t) => {
  const error = await t.throwsAsync(() => createVideoWriter(join(dir.path, "out.mp4"), { width: 32, height: 32, fps: 5 }), { instanceOf: BackendUnavailableError });
  t.is(error.message, "ffmpeg was not found on PATH: install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS), or pass options.ffmpegPath");
});
