import test from "ava";
import { createHash } from "node:crypto";
import { readdirSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileSha256 } from "../../lib/cache/file_stamps.js";
import { temporaryDirectory } from "../support/fixtures.js";

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/**
 * A file written, then left alone for longer than a timestamp tick of any filesystem (2 s), as a
 * checkpoint downloaded earlier is: its change time cannot be set back, so the test waits.
 */
async function settledFile(path: string, content: string): Promise<void> {
  writeFileSync(path, content);
  await new Promise((resolve) => setTimeout(resolve, 2100));
}

function setup(t: { teardown(fn: () => void): void }): { dir: string; cache: string; file: string } {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return { dir: dir.path, cache: join(dir.path, "cache"), file: join(dir.path, "weights.pth") };
}

test("an unchanged file is read once: later calls answer from its stamp", async (t) => {
  const { cache, file } = setup(t);
  await settledFile(file, "weights v1");
  let reads = 0;
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v1"));
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v1"));
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v1"));
  t.is(reads, 1);
});

test("new content of the same size, a replaced file and a touch are each read again", async (t) => {
  const { dir, cache, file } = setup(t);
  await settledFile(file, "weights v1");
  let reads = 0;
  await fileSha256(file, cache, () => reads++);
  await settledFile(file, "weights v2");
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v2"));
  writeFileSync(join(dir, "other"), "weights v3");
  renameSync(join(dir, "other"), file);
  await new Promise((resolve) => setTimeout(resolve, 2100));
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v3"));
  const earlier = new Date(Date.now() - 30_000);
  utimesSync(file, earlier, earlier);
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v3"));
  t.is(reads, 4);
});

test("a file modified moments before it was hashed is read again next time (it could change within one timestamp tick)", async (t) => {
  const { cache, file } = setup(t);
  writeFileSync(file, "being written");
  let reads = 0;
  await fileSha256(file, cache, () => reads++);
  await fileSha256(file, cache, () => reads++);
  t.is(reads, 2);
});

test("a damaged stamp record is ignored, not trusted", async (t) => {
  const { cache, file } = setup(t);
  await settledFile(file, "weights v1");
  await fileSha256(file, cache);
  const records = readdirSync(join(cache, "stamps"));
  t.is(records.length, 1);
  writeFileSync(join(cache, "stamps", records[0]!), JSON.stringify({ path: file, sha256: "0".repeat(64) }));
  let reads = 0;
  t.is(await fileSha256(file, cache, () => reads++), sha256("weights v1"));
  t.is(reads, 1);
});
