import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { cachedConversion, type ConversionKey } from "../../lib/cache/onnx_cache.js";
import { InputError } from "../../lib/errors.js";
import { temporaryDirectory } from "../support/fixtures.js";

const key: ConversionKey = { model: "dav1", checkpointSha256: "ab".repeat(32), converterVersion: "0123456789abcdef", options: { channelOrder: "rgb" } };

/** A stand-in converter that writes a graph file and a weights file and counts its calls. */
function fakeConverter() {
  const calls: string[] = [];
  const convert = async (onnxPath: string) => {
    calls.push(onnxPath);
    writeFileSync(onnxPath, "graph");
    writeFileSync(join(dirname(onnxPath), "model.onnx.data"), Buffer.alloc(1000, 7));
  };
  return { calls, convert };
}

test("converts once and reuses the verified entry afterwards", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { calls, convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  const second = await cachedConversion(cache.path, key, convert);
  t.true(first.converted);
  t.false(second.converted);
  t.is(calls.length, 1);
  t.is(second.onnxPath, first.onnxPath);
  t.is(second.contentHash, first.contentHash);
  t.is(readFileSync(first.onnxPath, "utf8"), "graph");
});

test("an entry whose weights were altered is rebuilt, not trusted", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { calls, convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  const weights = join(first.dir, "model.onnx.data");
  const bytes = readFileSync(weights);
  bytes[500] ^= 1;
  writeFileSync(weights, bytes);
  const again = await cachedConversion(cache.path, key, convert);
  t.true(again.converted);
  t.is(calls.length, 2);
  t.is(readFileSync(weights)[500], 7);
});

test("a truncated entry and an entry without manifest are rebuilt", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { calls, convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  truncateSync(join(first.dir, "model.onnx.data"), 10);
  t.true((await cachedConversion(cache.path, key, convert)).converted);
  writeFileSync(join(first.dir, "manifest.json"), "{ not json");
  t.true((await cachedConversion(cache.path, key, convert)).converted);
  t.is(calls.length, 3);
});

test("a new converter version or other options make a separate entry", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { convert } = fakeConverter();
  const base = await cachedConversion(cache.path, key, convert);
  const newer = await cachedConversion(cache.path, { ...key, converterVersion: "fedcba9876543210" }, convert);
  const bgr = await cachedConversion(cache.path, { ...key, options: { channelOrder: "bgr" } }, convert);
  t.not(newer.dir, base.dir);
  t.not(bgr.dir, base.dir);
  t.true(newer.converted && bgr.converted);
});

test("a failing conversion leaves nothing in the cache", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const failing = async (onnxPath: string) => {
    writeFileSync(onnxPath, "half");
    throw new Error("converter exploded");
  };
  await t.throwsAsync(cachedConversion(cache.path, key, failing), { message: "converter exploded" });
  t.deepEqual(readdirSync(join(cache.path, "onnx")), []);
});

/** Warnings the process emits while `work` runs. */
async function warningsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const warnings: string[] = [];
  const listener = (warning: Error) => warnings.push(warning.message);
  process.on("warning", listener);
  try {
    await work();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", listener);
  }
  return warnings;
}

test("a manifest that is JSON of the wrong form makes the entry rebuilt with a warning, never a TypeError", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { calls, convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  const forms = ["null", "[]", '{"format":1}', `{"format":1,"key":${JSON.stringify(key)},"files":"model.onnx"}`, `{"format":1,"key":${JSON.stringify(key)},"files":[{"name":"../x","size":1,"sha256":"${"0".repeat(64)}"}]}`];
  for (const form of forms) {
    writeFileSync(join(first.dir, "manifest.json"), form);
    const warnings = await warningsDuring(async () => t.true((await cachedConversion(cache.path, key, convert)).converted, form));
    t.true(warnings.some((warning) => warning.includes(first.dir) && /manifest/.test(warning)), `${form}: ${warnings.join(" | ")}`);
  }
  t.is(calls.length, 1 + forms.length);
});

test("a manifest edited to drop the weights file, with the weights corrupted, is refused: an entry holds nothing its manifest does not vouch for", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const { calls, convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  const manifest = JSON.parse(readFileSync(join(first.dir, "manifest.json"), "utf8")) as { files: { name: string }[] };
  manifest.files = manifest.files.filter((file) => file.name !== "model.onnx.data");
  writeFileSync(join(first.dir, "manifest.json"), JSON.stringify(manifest));
  writeFileSync(join(first.dir, "model.onnx.data"), Buffer.alloc(1000, 9));
  const warnings = await warningsDuring(async () => t.true((await cachedConversion(cache.path, key, convert)).converted));
  t.true(warnings.some((warning) => warning.includes("files its manifest does not list (model.onnx.data)")), warnings.join(" | "));
  t.is(readFileSync(join(first.dir, "model.onnx.data"))[0], 7);
  t.is(calls.length, 2);
});

test("a file where the cache's onnx folder should be is an InputError naming it", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  writeFileSync(join(cache.path, "onnx"), "not a folder");
  const error = await t.throwsAsync(cachedConversion(cache.path, key, fakeConverter().convert), { instanceOf: InputError });
  t.is(error!.file, join(cache.path, "onnx"));
  t.regex(error!.message, /a file is in its way/);
});

test("temporary folders and a lock left by a dead process are cleared by the next conversion", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const deadPid = Number(dead.stdout);
  const onnx = join(cache.path, "onnx");
  const { convert } = fakeConverter();
  const first = await cachedConversion(cache.path, key, convert);
  const name = first.dir.slice(onnx.length + 1);
  mkdirSync(join(onnx, `.${name}.${deadPid}.0badc0de.endosynth-tmp`));
  writeFileSync(join(onnx, `.${name}.${deadPid}.0badc0de.endosynth-tmp`, "model.onnx"), "half");
  writeFileSync(join(onnx, `.${name}.endosynth-lock`), JSON.stringify({ pid: deadPid, host: hostname(), token: "0123456789abcdef", since: Date.now() }));
  writeFileSync(join(first.dir, "manifest.json"), "{ damaged");
  const again = await warningsDuring(() => cachedConversion(cache.path, key, convert));
  t.true(again.length > 0);
  t.deepEqual(readdirSync(onnx), [name]);
});
