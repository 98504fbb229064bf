/**
 * Starting again: a load() of a model loaded before reads neither its checkpoint nor its cached
 * files again while they are unchanged, and ONNX Runtime opens the optimized graph it kept, which
 * is checked like everything else in the cache.
 */
import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "../lib/model.js";
import { readNpy } from "../lib/io/npy.js";
import { fixture, temporaryDirectory } from "./support/fixtures.js";

async function phasesOfLoad(cacheDir: string): Promise<{ phases: string[]; depth: Float32Array }> {
  const phases: string[] = [];
  const model = await load("dav2", { checkpoint: fixture("dav2", "tiny.pth"), cacheDir, backend: "onnxruntime", onProgress: (p) => phases.push(p.phase) });
  try {
    const depth = await model.infer(readNpy(fixture("dav2", "input.npy")) as never);
    return { phases: [...new Set(phases)], depth: depth.data };
  } finally {
    await model.dispose();
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2100));

test("a load of an unchanged model reads nothing again: no hashing, no verifying, no optimizing", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const cold = await phasesOfLoad(cache.path);
  t.true(cold.phases.includes("building graph"));
  await settle();
  await phasesOfLoad(cache.path);
  const warm = await phasesOfLoad(cache.path);
  t.deepEqual(warm.phases, ["opening onnxruntime"]);
  t.deepEqual(warm.depth, cold.depth);
});

test("ONNX Runtime's kept optimized graph is used when intact, and made again when damaged", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const first = await phasesOfLoad(cache.path);
  const [entry] = readdirSync(join(cache.path, "onnx"));
  const dir = join(cache.path, "onnx", entry!);
  const derived = readdirSync(dir).filter((name) => name.startsWith("model.onnx.derived-onnxruntime-"));
  t.is(derived.length, 2, derived.join(", "));
  const graph = join(dir, derived.find((name) => name.endsWith(".onnx"))!);
  const bytes = readFileSync(graph);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(graph, bytes);
  const again = await phasesOfLoad(cache.path);
  t.deepEqual(again.depth, first.depth);
  t.not(readFileSync(graph)[bytes.length >> 1], bytes[bytes.length >> 1], "the damaged graph was made again");
});
