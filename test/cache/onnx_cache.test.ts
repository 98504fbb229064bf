import test from "ava";
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { cachedConversion, type ConversionKey } from "../../lib/cache/onnx_cache.js";
import { temporaryDirectory } from "../helpers/fixtures.js";

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
