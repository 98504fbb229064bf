import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writePth, type PthTensor } from "../support/pth_writer.js";
import { readStateDict, readStateDictFromBytes } from "../../lib/checkpoint/state_dict.js";
import { openZip, readZipEntry } from "../../lib/io/zip_reader.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { temporaryDirectory } from "../support/fixtures.js";

function tempFile(t: { teardown: (fn: () => void) => void }, name: string): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return join(dir.path, name);
}

/** One tensor of every dtype torch can store, with the extremes of each. */
function everyDtype(): Map<string, NdArray> {
  return new Map<string, NdArray>([
    ["f32", ndarray(Float32Array.from([0, -1.5, 3.4028234663852886e38, 1.401298464324817e-45, -Infinity]), [5])],
    ["f64", ndarray(Float64Array.from([Math.PI, -1e300, 5e-324, Number.NaN]), [2, 2])],
    ["f16", ndarray(Float32Array.from([0.5, -2, 65504, 2 ** -24, 0.0999755859375, -0]), [3, 2], "float16")],
    ["bf16", ndarray(Float32Array.from([1, -3.140625, 256, 2 ** -126]), [4], "bfloat16")],
    ["i64", ndarray(BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n]), [3])],
    ["i32", ndarray(Int32Array.from([-(2 ** 31), 2 ** 31 - 1]), [2])],
    ["i16", ndarray(Int16Array.from([-32768, 32767, 1]), [3])],
    ["i8", ndarray(Int8Array.from([-128, 127]), [2])],
    ["u8", ndarray(Uint8Array.from([0, 255, 7]), [3])],
    ["bool", ndarray(Uint8Array.from([1, 0, 0, 1]), [2, 2], "bool")],
    ["scalar", ndarray(Float32Array.from([7.25]), [])],
    ["empty", ndarray(new Float32Array(0), [2, 0, 3])],
  ]);
}

function plain(array: NdArray): unknown {
  return { shape: array.shape, dtype: array.dtype, values: Array.from(array.data as ArrayLike<number>) };
}

test("every dtype torch can store survives a write and read with the same values", async (t) => {
  const path = tempFile(t, "dtypes.pth");
  const written = everyDtype();
  t.like(writePth(path, written), { tensors: written.size, storages: written.size });
  const { stateDict, info } = await readStateDict(path);
  t.deepEqual([...stateDict.keys()], [...written.keys()]);
  for (const [key, array] of written) t.deepEqual(plain(stateDict.get(key)!), plain(array), key);
  t.deepEqual(info.dtypes, ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]);
  t.is(info.parameters, 5 + 4 + 6 + 4 + 3 + 2 + 3 + 2 + 3 + 4 + 1 + 0);
});

test("float16 and bfloat16 come as decoded float32 values by default and as their bits on request", async (t) => {
  const path = tempFile(t, "halves.pth");
  writePth(path, everyDtype());
  const decoded = (await readStateDict(path)).stateDict;
  t.true(decoded.get("f16")!.data instanceof Float32Array);
  const raw = (await readStateDict(path, { halfPrecision: "raw" })).stateDict;
  const f16 = raw.get("f16")!;
  t.is(f16.dtype, "float16");
  t.true(f16.data instanceof Uint16Array);
  // IEEE half bits: 0.5, -2, 65504, smallest subnormal, 0.1 rounded, -0
  t.deepEqual(Array.from(f16.data as Uint16Array), [0x3800, 0xc000, 0x7bff, 0x0001, 0x2e66, 0x8000]);
  // bfloat16 = top half of the float32: 1, -3.140625, 256, 2^-126
  t.deepEqual(Array.from(raw.get("bf16")!.data as Uint16Array), [0x3f80, 0xc049, 0x4380, 0x0080]);
});

test("tensors are zero-copy views of the file's bytes when aligned, and copies when the buffer is misaligned", (t) => {
  const path = tempFile(t, "aligned.pth");
  writePth(path, everyDtype());
  const bytes = readFileSync(path);
  const aligned = readStateDictFromBytes(bytes);
  const f32 = aligned.stateDict.get("f32")!;
  t.is(f32.data.buffer, bytes.buffer);
  t.is(aligned.info.copiedTensors, 2); // the decoded halves
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const misaligned = readStateDictFromBytes(shifted.subarray(1));
  // every tensor of more than one byte per element is copied; values are unchanged
  t.is(misaligned.info.copiedTensors, 9);
  for (const [key, array] of aligned.stateDict) t.deepEqual(plain(misaligned.stateDict.get(key)!), plain(array), key);
});

test("non-contiguous views (transpose, slice with offset, broadcast, 3-d permutation) read as torch would index them", async (t) => {
  const path = tempFile(t, "views.pth");
  const grid = ndarray(Float32Array.from({ length: 12 }, (_, i) => i), [3, 4]); // [[0..3], [4..7], [8..11]]
  const longs = ndarray(BigInt64Array.from({ length: 24 }, (_, i) => BigInt(i) - 12n), [2, 3, 4]);
  const halves = ndarray(Float32Array.from({ length: 6 }, (_, i) => i / 4), [2, 3], "float16");
  writePth(path, new Map<string, PthTensor>([
    ["transposed", { storage: grid, shape: [4, 3], stride: [1, 4] }],
    ["slice", { storage: grid, shape: [2, 2], stride: [4, 1], offset: 5 }],
    ["broadcast", { storage: grid, shape: [3, 2], stride: [0, 1], offset: 10 }],
    ["permuted", { storage: longs, shape: [4, 2, 3], stride: [1, 12, 4] }],
    ["halfT", { storage: halves, shape: [3, 2], stride: [1, 3] }],
  ]));
  const { stateDict, info } = await readStateDict(path);
  t.deepEqual(Array.from(stateDict.get("transposed")!.data as Float32Array), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  t.deepEqual(Array.from(stateDict.get("slice")!.data as Float32Array), [5, 6, 9, 10]);
  t.deepEqual(Array.from(stateDict.get("broadcast")!.data as Float32Array), [10, 11, 10, 11, 10, 11]);
  // permuted[a][b][c] = longs[b][c][a]
  const expected: bigint[] = [];
  for (let a = 0; a < 4; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) expected.push(BigInt(b * 12 + c * 4 + a) - 12n);
  t.deepEqual(Array.from(stateDict.get("permuted")!.data as BigInt64Array), expected);
  t.deepEqual(Array.from(stateDict.get("halfT")!.data as Float32Array), [0, 0.75, 0.25, 1, 0.5, 1.25]);
  t.deepEqual(stateDict.get("permuted")!.shape, [4, 2, 3]);
  t.is(info.copiedTensors, 5);
});

test("tensors sharing a storage are written once and read as views of the same bytes", async (t) => {
  const path = tempFile(t, "shared.pth");
  const weight = ndarray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const result = writePth(path, new Map<string, PthTensor>([
    ["encoder.weight", weight],
    ["decoder.weight", weight], // tied weights: the same array
    ["row1", { storage: weight, shape: [3], offset: 3 }],
  ]));
  t.like(result, { tensors: 3, storages: 1 });
  const archive = openZip(readFileSync(path), path);
  t.deepEqual([...archive.entries.keys()].filter((name) => name.includes("/data/")), ["shared/data/0"]);
  const { stateDict, info } = await readStateDict(path);
  const [encoder, decoder, row1] = ["encoder.weight", "decoder.weight", "row1"].map((key) => stateDict.get(key)!.data as Float32Array);
  t.deepEqual(Array.from(row1), [4, 5, 6]);
  t.is(encoder.buffer, decoder.buffer);
  t.is(row1.byteOffset, encoder.byteOffset + 12);
  t.is(info.copiedTensors, 0);
});

test("a big-endian checkpoint (byteorder 'big') reads back to the same values", async (t) => {
  const path = tempFile(t, "big.pth");
  const grid = ndarray(Float32Array.from([1.5, -2, 3, 4]), [2, 2]);
  writePth(path, new Map<string, PthTensor>([...everyDtype(), ["gridT", { storage: grid, shape: [2, 2], stride: [1, 2] }]]), { byteOrder: "big" });
  const archive = openZip(readFileSync(path), path);
  t.is(new TextDecoder().decode(readZipEntry(archive, "big/byteorder")), "big");
  // 1.5f is 0x3fc00000: most significant byte first in the file
  t.deepEqual(Array.from(readZipEntry(archive, "big/data/12").subarray(0, 4)), [0x3f, 0xc0, 0x00, 0x00]);
  const { stateDict, info } = await readStateDict(path);
  t.is(info.byteOrder, "big");
  for (const [key, array] of everyDtype()) t.deepEqual(plain(stateDict.get(key)!), plain(array), key);
  t.deepEqual(Array.from(stateDict.get("gridT")!.data as Float32Array), [1.5, 3, -2, 4]);
});

for (const wrapper of ["model", "state_dict"] as const) {
  test(`a state dict nested under '${wrapper}' beside other entries is found and reported`, async (t) => {
    const path = tempFile(t, `${wrapper}.pth`);
    const momentum = ndarray(Float32Array.from([9, 9]), [2]);
    writePth(path, everyDtype(), {
      wrapIn: wrapper,
      extra: new Map<string, unknown>([
        ["epoch", 12],
        ["lr", 0.5],
        ["optimizer", new Map<string, unknown>([["state", [momentum, null, true]]])],
      ]) as never,
    });
    const { stateDict, info } = await readStateDict(path);
    t.is(info.wrapper, wrapper);
    t.deepEqual([...stateDict.keys()], [...everyDtype().keys()]);
    t.deepEqual(plain(stateDict.get("f32")!), plain(everyDtype().get("f32")!));
  });
}

test("a DataParallel 'module.' prefix is stripped only when every key has it", async (t) => {
  const path = tempFile(t, "dp.pth");
  const a = ndarray(Float32Array.from([1]), [1]);
  writePth(path, new Map([["module.encoder.weight", a], ["module.head.bias", a]]));
  const stripped = await readStateDict(path);
  t.deepEqual([...stripped.stateDict.keys()], ["encoder.weight", "head.bias"]);
  t.is(stripped.info.strippedPrefix, "module.");

  const mixed = tempFile(t, "mixed.pth");
  writePth(mixed, new Map([["module.encoder.weight", a], ["head.bias", a]]));
  const kept = await readStateDict(mixed);
  t.deepEqual([...kept.stateDict.keys()], ["module.encoder.weight", "head.bias"]);
  t.is(kept.info.strippedPrefix, undefined);
});

test("a state dict streamed from a generator is written like the same Map", async (t) => {
  const fromMap = tempFile(t, "map.pth");
  const fromStream = tempFile(t, "map2.pth");
  writePth(fromMap, everyDtype(), { stem: "archive" });
  let made = 0;
  function* stream(): Generator<[string, NdArray]> {
    for (const entry of everyDtype()) {
      made++;
      yield entry;
    }
  }
  writePth(fromStream, stream(), { stem: "archive" });
  t.is(made, everyDtype().size);
  t.deepEqual(readFileSync(fromStream), readFileSync(fromMap));
});
