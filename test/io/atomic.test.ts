import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../lib/errors.js";
import { removeStaleTemporaries, temporaryOwner, temporaryPathFor, withAtomicFile, writeFileAtomicSync } from "../../lib/io/atomic.js";
import { whileRunningUntil } from "../support/child_process.js";
import { repoRoot } from "../support/fixtures.js";
import { bytesOf, tempDir } from "./helpers.js";

/** The pid of a process that has exited (so no process has it, barring reuse in the meantime). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid!;
}

test("temporary files are named .<name>.<pid>.<8 hex>.endosynth-tmp beside the target, and recognised", (t) => {
  const path = temporaryPathFor("/data/out/depth.npz");
  t.regex(path, new RegExp(`^/data/out/\\.depth\\.npz\\.${process.pid}\\.[0-9a-f]{8}\\.endosynth-tmp$`));
  t.is(temporaryOwner(path.slice("/data/out/".length)), process.pid);
  t.is(temporaryOwner(`.out.mp4.123.0123abcd.endosynth-tmp.mp4`), 123); // ffmpeg needs the extension after it
  for (const name of ["depth.npz", ".depth.npz.123.tmp", ".x.12.0123abcd.endosynth-tmp.a.b", ".x.pid.0123abcd.endosynth-tmp"]) {
    t.is(temporaryOwner(name), undefined, name);
  }
});

test("writeFileAtomicSync replaces the target whole and leaves nothing else", (t) => {
  const dir = tempDir(t);
  const target = join(dir, "out.bin");
  writeFileSync(target, "old");
  writeFileAtomicSync(target, [bytesOf("new "), bytesOf("content")]);
  t.is(readFileSync(target, "utf8"), "new content");
  t.deepEqual(readdirSync(dir), ["out.bin"]);
});

test("writeFileAtomicSync: a missing folder, a file in the path or a folder at the target is an InputError naming it", (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "missing", "out.bin");
  const error = t.throws(() => writeFileAtomicSync(missing, bytesOf("x")), { instanceOf: InputError, message: `Cannot write ${missing}: its folder does not exist` });
  t.is(error.file, missing);
  writeFileSync(join(dir, "file"), "x");
  t.throws(() => writeFileAtomicSync(join(dir, "file", "out.bin"), bytesOf("x")), { instanceOf: InputError, message: /a part of its path is a file, not a folder$/ });
  mkdirSync(join(dir, "folder"));
  t.throws(() => writeFileAtomicSync(join(dir, "folder"), bytesOf("x")), { instanceOf: InputError, message: /folder: it is a folder$/ });
  t.deepEqual(readdirSync(dir).sort(), ["file", "folder"]);
});

test("withAtomicFile renames what the writer wrote; a failing writer leaves the target and no temporary file", async (t) => {
  const dir = tempDir(t);
  const target = join(dir, "out.png");
  writeFileSync(target, "old");
  const seen = await withAtomicFile(target, async (temporary) => {
    t.is(temporaryOwner(temporary.slice(dir.length + 1)), process.pid);
    writeFileSync(temporary, "new");
    return temporary;
  });
  t.false(existsSync(seen));
  t.is(readFileSync(target, "utf8"), "new");
  const failure = new Error("encoder crashed");
  await t.throwsAsync(
    withAtomicFile(target, async (temporary) => {
      writeFileSync(temporary, "partial");
      throw failure;
    }),
    { is: failure },
  );
  await t.throwsAsync(withAtomicFile(target, async (temporary) => writeFileSync(join(temporary, "x"), "")), { instanceOf: InputError, message: /^Cannot write .*out\.png: / });
  t.is(readFileSync(target, "utf8"), "new");
  t.deepEqual(readdirSync(dir), ["out.png"]);
  await t.throwsAsync(withAtomicFile(join(dir, "gone", "x.png"), async () => undefined), { instanceOf: InputError, message: /its folder does not exist$/ });
});

test("removeStaleTemporaries deletes the temporaries of dead processes only, files and folders", async (t) => {
  const dir = tempDir(t);
  const dead = await deadPid();
  const names = {
    deadFile: `.model.onnx.${dead}.0123abcd.endosynth-tmp`,
    deadFolder: `.entry.${dead}.89abcdef.endosynth-tmp`,
    deadVideo: `.out.mp4.${dead}.00000000.endosynth-tmp.mp4`,
    mine: `.model.onnx.${process.pid}.0123abcd.endosynth-tmp`,
    parent: `.model.onnx.${process.ppid}.0123abcd.endosynth-tmp`,
    other: "model.onnx",
    lookalike: `.model.onnx.${dead}.tmp`,
  };
  for (const [key, name] of Object.entries(names)) {
    if (key === "deadFolder") {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "inside"), "x");
    } else writeFileSync(join(dir, name), "x");
  }
  const removed = await removeStaleTemporaries(dir);
  t.deepEqual(removed.sort(), [names.deadFile, names.deadFolder, names.deadVideo].map((name) => join(dir, name)).sort());
  t.deepEqual(readdirSync(dir).sort(), [names.mine, names.parent, names.other, names.lookalike].sort());
  t.deepEqual(await removeStaleTemporaries(join(dir, "missing")), []);
});

test("a writer killed with SIGKILL mid-write leaves the previous file whole, and its temporary is cleaned up after", async (t) => {
  const dir = tempDir(t);
  const target = join(dir, "big.bin");
  writeFileSync(target, "previous");
  const script = join(dir, "writer.mts");
  writeFileSync(
    script,
    `import { writeFileAtomicSync } from ${JSON.stringify(join(repoRoot, "lib/io/atomic.ts"))};\n` +
      "const chunk = new Uint8Array(1 << 20).fill(7);\n" +
      `for (;;) writeFileAtomicSync(${JSON.stringify(target)}, new Array(64).fill(chunk));\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  // Kill it as soon as its temporary file exists: the write is under way.
  await whileRunningUntil(child, () => readdirSync(dir).some((name) => temporaryOwner(name) === child.pid), () => stderr);
  child.kill("SIGKILL");
  await exited;
  const content = readFileSync(target);
  t.true(content.toString() === "previous" || (content.length === 64 << 20 && content.every((byte) => byte === 7)));
  const left = readdirSync(dir).filter((name) => temporaryOwner(name) === child.pid);
  t.is(left.length, 1);
  t.deepEqual(await removeStaleTemporaries(dir), [join(dir, left[0])]);
  t.deepEqual(readdirSync(dir).sort(), ["big.bin", "writer.mts"]);
});
