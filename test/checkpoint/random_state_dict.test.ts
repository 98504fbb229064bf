import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writePth } from "../support/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../support/random_state_dict.js";
import { readStateDict } from "../../lib/checkpoint/state_dict.js";
import { InputError } from "../../lib/errors.js";
import { roundFloat16 } from "../../lib/ndarray/float16.js";
import { size, type NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";

/** Same dtype, shape and bytes (ava's deepEqual is slow on million-element arrays). */
function sameTensor(a: NdArray | undefined, b: NdArray | undefined): boolean {
  if (!a || !b || a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const bytes = (array: NdArray) => Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return bytes(a).equals(bytes(b));
}

function keysJson(arch: string): KeysJson & { num_elements: number } {
  return JSON.parse(readFileSync(fixture(arch, "keys_full.json"), "utf8"));
}

test("yields exactly the keys, shapes and dtypes of keys_full.json, adding up to its element count", (t) => {
  const keys = keysJson("dav1");
  const seen: { key: string; shape: readonly number[]; dtype: string }[] = [];
  let elements = 0;
  for (const [key, array] of randomStateDictFromKeys(keys, 7)) {
    seen.push({ key, shape: array.shape, dtype: array.dtype });
    t.is(array.data.length, size(array.shape));
    elements += size(array.shape);
  }
  t.deepEqual(seen, keys.keys.map(({ key, shape, dtype }) => ({ key, shape, dtype })));
  t.is(elements, keys.num_elements);
});

test("values depend only on the seed and the key, and are re-generated on each iteration", (t) => {
  const keys = keysJson("midas").keys.slice(0, 6);
  const first = new Map(randomStateDictFromKeys({ keys }, 3));
  const again = new Map(randomStateDictFromKeys({ keys: [...keys].reverse() }, 3));
  const other = new Map(randomStateDictFromKeys({ keys }, 4));
  for (const { key } of keys) {
    t.true(sameTensor(again.get(key), first.get(key)), key);
    t.false(sameTensor(other.get(key), first.get(key)), key);
    t.not(again.get(key)!.data, first.get(key)!.data);
  }
});

test("values are scaled like a trained network's: ±1/sqrt(fan-in), norm scales 1 ± 0.1, others ±0.1", (t) => {
  const keys = keysJson("dav1").keys.filter(({ key }) =>
    ["pretrained.blocks.0.attn.qkv.weight", "pretrained.blocks.0.norm1.weight", "pretrained.blocks.0.norm1.bias", "pretrained.patch_embed.proj.weight"].includes(key),
  );
  const stateDict = new Map(randomStateDictFromKeys({ keys }, 11));
  const range = (key: string) => {
    const values = Array.from(stateDict.get(key)!.data as Float32Array);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const min = values.reduce((a, b) => Math.min(a, b));
    const max = values.reduce((a, b) => Math.max(a, b));
    return { min, max, mean, distinct: new Set(values).size / values.length };
  };
  const qkv = range("pretrained.blocks.0.attn.qkv.weight"); // [2304, 768]
  t.true(qkv.min >= -1 / Math.sqrt(768) && qkv.max < 1 / Math.sqrt(768));
  t.true(qkv.max > 0.9 / Math.sqrt(768) && qkv.min < -0.9 / Math.sqrt(768));
  t.true(Math.abs(qkv.mean) < 1e-3);
  t.true(qkv.distinct > 0.9);
  const patch = range("pretrained.patch_embed.proj.weight"); // [768, 3, 14, 14]: fan-in 588
  t.true(patch.min >= -1 / Math.sqrt(588) && patch.max < 1 / Math.sqrt(588));
  const scale = range("pretrained.blocks.0.norm1.weight");
  t.true(scale.min >= 0.9 && scale.max < 1.1 && Math.abs(scale.mean - 1) < 0.02);
  const bias = range("pretrained.blocks.0.norm1.bias");
  t.true(bias.min >= -0.1 && bias.max < 0.1);
});

test("streams into the pth writer and reads back as the same tensors", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const path = join(dir.path, "endodac-random.pth");
  const keys = keysJson("endodac").keys.slice(0, 40);
  const result = writePth(path, randomStateDictFromKeys({ keys }, 5));
  t.is(result.tensors, 40);
  const { stateDict, info } = await readStateDict(path);
  t.is(info.copiedTensors, 0);
  const expected = new Map(randomStateDictFromKeys({ keys }, 5));
  t.deepEqual([...stateDict.keys()], [...expected.keys()]);
  for (const [key, array] of expected) t.true(sameTensor(stateDict.get(key), array), key);
});

test("other dtypes get exact values: halves representable, integers in [0, 10), bools 0/1", (t) => {
  const keys = [
    { key: "h.weight", shape: [64], dtype: "float16" as const },
    { key: "b.bias", shape: [64], dtype: "bfloat16" as const },
    { key: "steps", shape: [64], dtype: "int64" as const },
    { key: "mask", shape: [64], dtype: "bool" as const },
  ];
  const stateDict = new Map(randomStateDictFromKeys({ keys }, 1));
  const half = Array.from(stateDict.get("h.weight")!.data as Float32Array);
  t.true(half.every((v) => v >= 0.9 && v <= 1.1 && roundFloat16(v) === v));
  const brain = new Uint32Array((stateDict.get("b.bias")!.data as Float32Array).slice().buffer);
  t.true(brain.every((bits) => (bits & 0xffff) === 0));
  t.true(Array.from(stateDict.get("steps")!.data as BigInt64Array).every((v) => v >= 0n && v < 10n));
  t.deepEqual(new Set(stateDict.get("mask")!.data as Uint8Array), new Set([0, 1]));
});

test("a malformed keys description is an InputError naming the field", (t) => {
  t.throws(() => randomStateDictFromKeys({} as never, 1), { instanceOf: InputError, message: /keysJson\.keys/ });
  t.throws(() => randomStateDictFromKeys({ keys: [{ key: "a", shape: [-1], dtype: "float32" }] }, 1), {
    instanceOf: InputError,
    message: /Expected an array of non-negative integers for keysJson\.keys\[0\]\.shape/,
  });
  t.throws(() => randomStateDictFromKeys({ keys: [{ key: "a", shape: [1], dtype: "float8" as never }] }, 1), {
    instanceOf: InputError,
    message: /keysJson\.keys\[0\]\.dtype but received "float8"/,
  });
});
