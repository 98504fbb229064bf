import test from "ava";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ffmpegDialect } from "../../lib/video/process.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { programs } from "./helpers.js";

const dir = temporaryDirectory();
test.after.always(dir.cleanup);

/** A stand-in ffmpeg that prints a `-version` report with this libavformat version. */
function ffmpegPrinting(name: string, libavformat: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, `#!/bin/sh\necho "ffmpeg version n-test Copyright (c) 2000-2024 the FFmpeg developers"\necho "libavformat    ${libavformat} / ${libavformat}"\n`);
  chmodSync(path, 0o755);
  return path;
}

test("option spellings follow the ffmpeg found: -vsync / -enc_time_base -1 before ffmpeg 6 and 7, -fps_mode / demux after", async (t) => {
  t.deepEqual(await ffmpegDialect(ffmpegPrinting("ffmpeg4", "58. 76.100")), { passthrough: ["-vsync", "passthrough"], inputTimeBase: ["-enc_time_base", "-1"] });
  t.deepEqual(await ffmpegDialect(ffmpegPrinting("ffmpeg6", "60. 16.100")), { passthrough: ["-fps_mode", "passthrough"], inputTimeBase: ["-enc_time_base", "-1"] });
  t.deepEqual(await ffmpegDialect(ffmpegPrinting("ffmpeg7", "61.  7.100")), { passthrough: ["-fps_mode", "passthrough"], inputTimeBase: ["-enc_time_base", "demux"] });
  // The installed one (the 4.1 static build of @ffmpeg-installer here) answers for itself.
  const installed = await ffmpegDialect(programs.ffmpeg);
  t.true(["-vsync", "-fps_mode"].includes(installed.passthrough[0]));
});
