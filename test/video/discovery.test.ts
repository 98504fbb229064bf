import test from "ava";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { BackendUnavailableError, InputError } from "../../lib/errors.js";
import { type ProgramSearch, searchFfmpegPrograms } from "../../lib/video/discovery.js";
import { createVideoWriter, findFfmpegPrograms, probeVideo, readVideo } from "../../lib/video/index.js";
import { temporaryDirectory } from "../support/fixtures.js";

const dir = temporaryDirectory();
test.after.always(dir.cleanup);

/** An executable file at `folder/name` (never run: discovery only checks it is there and executable). */
function program(folder: string, name: string): string {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, name);
  writeFileSync(path, "#!/bin/sh\nexit 0\n");
  chmodSync(path, 0o755);
  return path;
}

const packaged = { ffmpeg: program(join(dir.path, "pkg-ffmpeg"), "ffmpeg"), ffprobe: program(join(dir.path, "pkg-ffprobe"), "ffprobe") };
const onPath = join(dir.path, "bin");
const pathFfmpeg = program(onPath, "ffmpeg");
const pathFfprobe = program(onPath, "ffprobe");
const custom = program(join(dir.path, "custom"), "my-ffmpeg");
const nonExecutable = join(dir.path, "custom", "not-executable");
writeFileSync(nonExecutable, "");

function search(env: NodeJS.ProcessEnv, packages: boolean): ProgramSearch {
  return {
    env,
    packageBinary: (name) => (!packages ? undefined : name === "@ffmpeg-installer/ffmpeg" ? packaged.ffmpeg : packaged.ffprobe),
  };
}

test("an explicit option wins over the environment, the packages and PATH", (t) => {
  const found = searchFfmpegPrograms({ ffmpegPath: custom }, search({ ENDOSYNTH_FFMPEG: pathFfmpeg, PATH: onPath }, true));
  t.deepEqual(found, { ffmpeg: custom, ffmpegOrigin: "option", ffprobe: packaged.ffprobe });
});

test("ENDOSYNTH_FFMPEG and ENDOSYNTH_FFPROBE win over the packages and PATH", (t) => {
  const found = searchFfmpegPrograms(undefined, search({ ENDOSYNTH_FFMPEG: custom, ENDOSYNTH_FFPROBE: pathFfprobe, PATH: onPath }, true));
  t.deepEqual(found, { ffmpeg: custom, ffmpegOrigin: "environment", ffprobe: pathFfprobe });
});

test("the installer packages come before PATH", (t) => {
  t.deepEqual(searchFfmpegPrograms(undefined, search({ PATH: onPath }, true)), { ffmpeg: packaged.ffmpeg, ffmpegOrigin: "package", ffprobe: packaged.ffprobe });
});

test("without packages, PATH is searched; an ffprobe beside the ffmpeg found is preferred", (t) => {
  t.deepEqual(searchFfmpegPrograms(undefined, search({ PATH: `${join(dir.path, "empty")}${delimiter}${onPath}` }, false)), {
    ffmpeg: pathFfmpeg,
    ffmpegOrigin: "path",
    ffprobe: pathFfprobe,
  });
  const besideCustom = program(join(dir.path, "pair"), "ffprobe");
  const pairFfmpeg = program(join(dir.path, "pair"), "ffmpeg");
  t.is(searchFfmpegPrograms({ ffmpegPath: pairFfmpeg }, search({ PATH: onPath }, true)).ffprobe, besideCustom);
});

test("ffprobe is optional: with ffmpeg alone, none is reported (videos are probed with ffmpeg)", (t) => {
  const found = searchFfmpegPrograms({ ffmpegPath: custom }, search({ PATH: join(dir.path, "empty") }, false));
  t.deepEqual(found, { ffmpeg: custom, ffmpegOrigin: "option" });
});

test("with no ffmpeg anywhere, the error names the option, the environment variable, the packages and PATH", (t) => {
  const error = t.throws(() => searchFfmpegPrograms(undefined, search({ PATH: join(dir.path, "empty") }, false)), { instanceOf: BackendUnavailableError });
  t.is(error.code, "ERR_ENDOSYNTH_BACKEND_UNAVAILABLE");
  for (const part of ["ffmpegPath", "ENDOSYNTH_FFMPEG", "npm install @ffmpeg-installer/ffmpeg @ffprobe-installer/ffprobe", "PATH", "apt-get install ffmpeg", "brew install ffmpeg"]) {
    t.true(error.message.includes(part), part);
  }
});

test("an explicitly named program that is missing or not executable is an error, not a silent fallback", (t) => {
  const missing = t.throws(() => searchFfmpegPrograms(undefined, search({ ENDOSYNTH_FFMPEG: join(dir.path, "nope"), PATH: onPath }, true)), { instanceOf: BackendUnavailableError });
  t.regex(missing.message, /^ffmpeg was not found at .*nope \(from ENDOSYNTH_FFMPEG\): no executable file there\. endosynth looks for it in this order/);
  t.throws(() => searchFfmpegPrograms({ ffmpegPath: nonExecutable }, search({}, true)), { instanceOf: BackendUnavailableError, message: /not-executable \(from options\.ffmpegPath\)/ });
  t.throws(() => searchFfmpegPrograms({ ffprobePath: join(dir.path, "nope") }, search({}, true)), { instanceOf: BackendUnavailableError, message: /^ffprobe was not found at/ });
});

test("on this machine the installed @ffmpeg-installer packages are found", (t) => {
  if (process.env.ENDOSYNTH_FFMPEG) {
    t.is(findFfmpegPrograms().ffmpegOrigin, "environment");
    return;
  }
  const found = findFfmpegPrograms();
  t.is(found.ffmpegOrigin, "package");
  t.regex(found.ffmpeg, /node_modules\/@ffmpeg-installer\/[^/]+\/ffmpeg(\.exe)?$/);
  t.regex(found.ffprobe ?? "", /node_modules\/@ffprobe-installer\/[^/]+\/ffprobe(\.exe)?$/);
});

test("video calls check the programs and their arguments synchronously, before any work", (t) => {
  const missing = join(dir.path, "nope");
  t.throws(() => readVideo(join(dir.path, "x.mp4"), { ffmpegPath: missing }), { instanceOf: InputError, message: /does not exist/ });
  const clip = join(dir.path, "clip.mp4");
  writeFileSync(clip, "");
  t.throws(() => readVideo(clip, { ffmpegPath: missing }), { instanceOf: BackendUnavailableError });
  t.throws(() => probeVideo(clip, { ffmpegPath: missing }), { instanceOf: BackendUnavailableError });
  t.throws(() => createVideoWriter(join(dir.path, "out.mp4"), { width: 2, height: 2, fps: 1, ffmpegPath: missing }), { instanceOf: BackendUnavailableError });
  t.throws(() => findFfmpegPrograms({ ffmpeg: "x" } as never), { instanceOf: InputError, message: /Unknown option "ffmpeg"/ });
});
