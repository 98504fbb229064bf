import test from "ava";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  CACHE_FORMAT_VERSION,
  planPath,
  readPlanFile,
  readTimingCache,
  timingCachePath,
  writePlanFile,
  writeTimingCache,
  type EngineKeyFields,
} from "../../lib/cache/engine_cache.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { InputError } from "../../lib/errors.js";

const fields: EngineKeyFields = {
  onnxHash: "9c1f0e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100",
  tensorrtVersion: "10.16.0",
  gpuName: "NVIDIA GeForce RTX 4090",
  computeCapability: "8.9",
  precision: "fp16",
  inputShape: [420, 742, 3],
  workspaceMiB: null,
  optimizationLevel: null,
};

const timingFields = { tensorrtVersion: "10.16.0", gpuName: "NVIDIA GeForce RTX 4090", computeCapability: "8.9" };

/** A stand-in for a serialized engine: arbitrary bytes of a realistic-ish size. */
function fakePlan(bytes = 100_000): Uint8Array {
  const plan = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) plan[i] = (i * 2654435761) >>> 24;
  return plan;
}

function cacheFolder(t: { teardown: (fn: () => void) => void }): string {
  const folder = temporaryDirectory();
  t.teardown(folder.cleanup);
  return folder.path;
}

test("a plan written for one key is refused for a key differing in any field", async (t) => {
  const variants: Partial<EngineKeyFields>[] = [
    { onnxHash: "0c1f0e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100" },
    { tensorrtVersion: "10.16.1" },
    { gpuName: "NVIDIA H100 80GB HBM3" },
    { computeCapability: "9.0" },
    { precision: "fp32" },
    { inputShape: [420, 742, 4] },
    { inputShape: [421, 742, 3] },
    { inputShape: [420, 743, 3] },
    { workspaceMiB: 4096 },
    { optimizationLevel: 5 },
  ];
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, fields, fakePlan(1000));
  t.is((await readPlanFile(path, fields)).status, "hit");
  for (const variant of variants) {
    const read = await readPlanFile(path, { ...fields, ...variant });
    t.is(read.status, "rejected", JSON.stringify(variant));
  }
});

test("plan file names separate shapes, precisions, GPUs and builder options but not TensorRT versions", (t) => {
  const path = planPath("/cache", fields);
  t.is(dirname(path), "/cache/tensorrt");
  t.is(basename(path), "9c1f0e2d3b4a5968-420x742x3-fp16-NVIDIA_GeForce_RTX_4090-sm89-wsauto-optauto.plan");
  t.not(planPath("/cache", { ...fields, inputShape: [720, 1280, 3] }), path);
  t.not(planPath("/cache", { ...fields, precision: "fp32" }), path);
  t.not(planPath("/cache", { ...fields, gpuName: "NVIDIA A100-SXM4-80GB", computeCapability: "8.0" }), path);
  t.not(planPath("/cache", { ...fields, optimizationLevel: 5 }), path);
  // A TensorRT upgrade rebuilds the plan in place: the header, not the name, tells versions apart.
  t.is(planPath("/cache", { ...fields, tensorrtVersion: "10.17.0" }), path);
  t.is(basename(timingCachePath("/cache", timingFields)), "timing-NVIDIA_GeForce_RTX_4090-sm89.cache");
});

test("a written plan reads back byte for byte behind its header", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  const plan = fakePlan();
  await writePlanFile(path, fields, plan);
  const file = readFileSync(path);
  t.is(file.toString("latin1", 0, 8), "ENDOTRTP");
  t.is(file.readUInt32LE(8), CACHE_FORMAT_VERSION);
  const keyLength = file.readUInt32LE(12);
  t.like(JSON.parse(file.toString("utf8", 16, 16 + keyLength)), { tensorrtVersion: "10.16.0", gpuName: "NVIDIA GeForce RTX 4090", inputShape: [420, 742, 3] });
  t.is(file.readBigUInt64LE(16 + keyLength), BigInt(plan.length));
  t.deepEqual(file.subarray(24 + keyLength, 56 + keyLength), createHash("sha256").update(plan).digest());
  t.is(file.length, 56 + keyLength + plan.length);
  const read = await readPlanFile(path, fields);
  t.is(read.status, "hit");
  if (read.status === "hit") t.deepEqual(Buffer.from(read.payload), Buffer.from(plan));
});

test("a missing plan is reported as missing", async (t) => {
  t.deepEqual(await readPlanFile(planPath(cacheFolder(t), fields), fields), { status: "missing" });
});

test("a corrupt plan is rejected by its checksum", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, fields, fakePlan());
  const file = readFileSync(path);
  file[file.length - 500]! ^= 0x40;
  writeFileSync(path, file);
  const read = await readPlanFile(path, fields);
  t.is(read.status, "rejected");
  if (read.status === "rejected") t.is(read.reason, `${path} is corrupt: the payload's SHA-256 does not match the header`);
});

test("a truncated plan is rejected, whether cut in the payload or in the header", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, fields, fakePlan(5000));
  const file = readFileSync(path);
  writeFileSync(path, file.subarray(0, file.length - 1000));
  const cutPayload = await readPlanFile(path, fields);
  t.like(cutPayload, { status: "rejected" });
  if (cutPayload.status === "rejected") t.regex(cutPayload.reason, /is truncated: the header promises 5000 payload bytes but the file holds 4000$/);
  writeFileSync(path, file.subarray(0, 40));
  const cutHeader = await readPlanFile(path, fields);
  if (cutHeader.status === "rejected") t.regex(cutHeader.reason, /is truncated: 40 bytes, shorter than the \d+-byte header$/);
  else t.fail("a 40-byte plan was accepted");
  writeFileSync(path, file.subarray(0, 7));
  t.like(await readPlanFile(path, fields), { status: "rejected" });
});

test("a plan built by another TensorRT version is rejected as stale, naming the version", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, { ...fields, tensorrtVersion: "10.3.0" }, fakePlan());
  const read = await readPlanFile(path, fields);
  t.is(read.status, "rejected");
  if (read.status === "rejected") t.is(read.reason, `${path} is stale: built for tensorrtVersion "10.3.0" (now "10.16.0")`);
});

test("a plan built on another GPU is rejected as stale, naming the GPU", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, { ...fields, gpuName: "NVIDIA GeForce RTX 3090", computeCapability: "8.6" }, fakePlan());
  const read = await readPlanFile(path, fields);
  t.is(read.status, "rejected");
  if (read.status === "rejected") {
    t.is(read.reason, `${path} is stale: built for gpuName "NVIDIA GeForce RTX 3090" (now "NVIDIA GeForce RTX 4090"), computeCapability "8.6" (now "8.9")`);
  }
});

test("a file that is not one of our plans, or of another format version, is rejected", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, fakePlan(1000));
  const foreign = await readPlanFile(path, fields);
  if (foreign.status === "rejected") t.regex(foreign.reason, /is not an endosynth TensorRT plan file \(magic /);
  else t.fail("a raw TensorRT plan was accepted");

  await writePlanFile(path, fields, fakePlan(1000));
  const file = readFileSync(path);
  file.writeUInt32LE(CACHE_FORMAT_VERSION + 1, 8);
  writeFileSync(path, file);
  const future = await readPlanFile(path, fields);
  if (future.status === "rejected") t.regex(future.reason, new RegExp(`is stale: cache format version ${CACHE_FORMAT_VERSION + 1}, expected ${CACHE_FORMAT_VERSION}$`));
  else t.fail("a plan of another format version was accepted");
});

test("a timing cache is not mistaken for a plan, nor a plan for a timing cache", async (t) => {
  const folder = cacheFolder(t);
  const path = planPath(folder, fields);
  await writeTimingCache(path, timingFields, fakePlan(100));
  t.like(await readPlanFile(path, fields), { status: "rejected" });
  const timingPath = timingCachePath(folder, timingFields);
  await writePlanFile(timingPath, fields, fakePlan(100));
  t.like(await readTimingCache(timingPath, timingFields), { status: "rejected" });
});

test("writing a plan where a folder stands is refused with InputError and leaves no file behind", async (t) => {
  const folder = cacheFolder(t);
  const path = planPath(folder, fields);
  mkdirSync(join(path, "occupied"), { recursive: true });
  await t.throwsAsync(writePlanFile(path, fields, fakePlan()), { instanceOf: InputError, message: /it is a folder/ });
  t.deepEqual(readdirSync(dirname(path)), [basename(path)]);
  t.deepEqual(readdirSync(path), ["occupied"]);
});

test("rewriting a plan replaces it whole", async (t) => {
  const path = planPath(cacheFolder(t), fields);
  await writePlanFile(path, { ...fields, tensorrtVersion: "10.3.0" }, fakePlan(3000));
  await writePlanFile(path, fields, fakePlan(2000));
  const read = await readPlanFile(path, fields);
  t.is(read.status, "hit");
  if (read.status === "hit") t.is(read.payload.length, 2000);
  t.deepEqual(readdirSync(dirname(path)), [basename(path)]);
});

test("the timing cache reads back for its GPU and TensorRT version only", async (t) => {
  const path = timingCachePath(cacheFolder(t), timingFields);
  const cache = fakePlan(777);
  await writeTimingCache(path, timingFields, cache);
  const read = await readTimingCache(path, timingFields);
  t.is(read.status, "hit");
  if (read.status === "hit") t.deepEqual(Buffer.from(read.payload), Buffer.from(cache));
  const upgraded = await readTimingCache(path, { ...timingFields, tensorrtVersion: "11.1.0" });
  if (upgraded.status === "rejected") t.regex(upgraded.reason, /is stale: built for tensorrtVersion "10.16.0" \(now "11.1.0"\)$/);
  else t.fail("a timing cache of another TensorRT version was accepted");
  t.like(await readTimingCache(path, { ...timingFields, gpuName: "NVIDIA L4" }), { status: "rejected" });
  t.deepEqual(await readTimingCache(`${path}.absent`, timingFields), { status: "missing" });
});
