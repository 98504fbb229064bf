/**
 * Checkpoints as training code and torch actually save them: wrappers, non-tensor entries, tied
 * tensors, views that repeat their storage, dtypes torch saves through `_rebuild_tensor_v3`, and
 * tensor descriptions no torch writes (float dimensions, negative strides, complex storages).
 */
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readStateDict, readStateDictFromBytes } from "../../lib/checkpoint/state_dict.js";
import { CheckpointError, InputError } from "../../lib/errors.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { Pickler } from "../support/pickler.js";
import { writePth, type PthTensor, type PthValue } from "../support/pth_writer.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { bytesOf } from "./helpers.js";

function tempFile(t: { teardown: (fn: () => void) => void }, name: string): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return join(dir.path, name);
}

const weight = ndarray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
const bias = ndarray(Float32Array.from([0.5, -0.5]), [2]);
const tensors = () => new Map<string, PthTensor>([["conv.weight", weight], ["conv.bias", bias]]);

test("EndoDAC's trainer checkpoint (height, width, use_stereo beside the weights) reads, the extras dropped and listed", async (t) => {
  const { stateDict: tiny } = await readStateDict(fixture("endodac", "tiny.pth"));
  const path = tempFile(t, "encoder.pth");
  writePth(path, tiny, { extra: new Map<string, PthValue>([["height", 256], ["width", 320], ["use_stereo", false]]) });
  const { stateDict, info } = await readStateDict(path);
  t.deepEqual([...stateDict.keys()], [...tiny.keys()]);
  t.deepEqual(info.dropped, [
    { key: "height", type: "an int" },
    { key: "width", type: "an int" },
    { key: "use_stereo", type: "a bool" },
  ]);
  t.is(info.wrapper, undefined);
  // And it converts, as the official wrapper loads it.
  const report = await convertCheckpoint({ model: "endodac", checkpoint: path, output: tempFile(t, "endodac.onnx") });
  t.is(report.consumedKeys.length + report.unusedKeys.length, tiny.size);
});

test("{ model_state_dict, optimizer_state_dict, epoch } is unwrapped, the rest listed as dropped", async (t) => {
  const path = tempFile(t, "trainer.pth");
  const optimizer = new Map<string, PthValue>([["state", new Map()], ["param_groups", [new Map<string, PthValue>([["lr", 1e-4]])]]]);
  writePth(path, tensors(), { wrapIn: "model_state_dict", extra: new Map<string, PthValue>([["optimizer_state_dict", optimizer], ["epoch", 12], ["loss", 0.25]]) });
  const { stateDict, info } = await readStateDict(path);
  t.deepEqual([...stateDict.keys()], ["conv.weight", "conv.bias"]);
  t.is(info.wrapper, "model_state_dict");
  t.deepEqual(info.dropped, [
    { key: "optimizer_state_dict", type: "a dict" },
    { key: "epoch", type: "an int" },
    { key: "loss", type: "a float" },
  ]);
});

test("wrappers nest (state_dict → model) and DataParallel's module. prefix comes off inside them", async (t) => {
  const path = tempFile(t, "nested.pth");
  const prefixed = new Map<string, PthValue>([["module.conv.weight", weight], ["module.conv.bias", bias]]);
  writePth(path, new Map(), { wrapIn: "hyper_parameters", extra: new Map<string, PthValue>([["state_dict", new Map<string, PthValue>([["model", prefixed], ["step", 3]])]]) });
  const { stateDict, info } = await readStateDict(path);
  t.deepEqual([...stateDict.keys()], ["conv.weight", "conv.bias"]);
  t.deepEqual(Array.from(stateDict.get("conv.bias")!.data as Float32Array), [0.5, -0.5]);
  t.is(info.wrapper, "state_dict.model");
  t.is(info.strippedPrefix, "module.");
  t.deepEqual(info.dropped, [
    { key: "hyper_parameters", type: "a dict" },
    { key: "state_dict.step", type: "an int" },
  ]);
});

test("stateDictKey picks a wrapper of any name; a wrong one names the keys there are", async (t) => {
  const path = tempFile(t, "ema.pth");
  writePth(path, tensors(), { wrapIn: "ema", extra: new Map<string, PthValue>([["model", new Map<string, PthValue>([["other", bias]])]]) });
  // Left alone, the known wrapper 'model' is taken; asked, 'ema' is.
  t.deepEqual([...(await readStateDict(path)).stateDict.keys()], ["other"]);
  const { stateDict, info } = await readStateDict(path, { stateDictKey: "ema" });
  t.deepEqual([...stateDict.keys()], ["conv.weight", "conv.bias"]);
  t.deepEqual(info.dropped, [{ key: "model", type: "a dict" }]);
  const error = await t.throwsAsync(readStateDict(path, { stateDictKey: "net" }), { instanceOf: CheckpointError });
  t.is(error.key, "net");
  t.regex(error.message, /options\.stateDictKey 'net' is not one of its top-level keys \(they are: 'ema', 'model'\)/);
  await t.throwsAsync(readStateDict(path, { stateDictKey: "" }), { instanceOf: InputError, message: /options\.stateDictKey/ });
});

test("a checkpoint of no tensors says what it holds", async (t) => {
  const path = tempFile(t, "empty.pth");
  writePth(path, new Map(), { wrapIn: "config", extra: new Map<string, PthValue>([["epoch", 1]]) });
  await t.throwsAsync(readStateDict(path), {
    instanceOf: CheckpointError,
    message: /holds no tensors: expected a state dict \(a dict of tensors\), or one under 'state_dict', 'model_state_dict', 'model'; its keys are 'config', 'epoch'/,
  });
});

test("the same tensor object under two keys is read once and shared; a repeated strided view is copied once", async (t) => {
  const path = tempFile(t, "tied.pth");
  const transposed: PthTensor = { storage: weight, shape: [3, 2], stride: [1, 3] };
  writePth(path, new Map<string, PthTensor>([["encoder.weight", transposed], ["decoder.weight", transposed], ["bias", bias]]));
  const { stateDict, info } = await readStateDict(path);
  t.is(stateDict.get("encoder.weight"), stateDict.get("decoder.weight"));
  t.deepEqual(Array.from(stateDict.get("decoder.weight")!.data as Float32Array), [1, 4, 2, 5, 3, 6]);
  t.is(info.copiedTensors, 1);
  t.is(info.tensors, 3);
});

test("a stride-0 view from expand() that would take 1 GiB is refused naming the key and the bytes, without allocating", async (t) => {
  // torch.save({'mask': torch.zeros(1).expand(2**28)}): a 1-element storage seen 268 million times.
  const path = tempFile(t, "expanded.pth");
  const one = ndarray(Float32Array.from([0]), [1]);
  writePth(path, new Map<string, PthTensor>([["bias", bias], ["mask", { storage: one, shape: [2 ** 28], stride: [0] }]]));
  t.true(readFileSync(path).length < 2000);
  const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError });
  t.is(error.key, "mask");
  t.regex(error.message, /tensor 'mask' \(shape \(268435456\), stride \(0\), float32\) would need 1073741824 bytes as an array/);
  t.regex(error.message, /stride 0 from expand\(\)/);
  // A small broadcast is materialised as torch indexes it.
  writePth(path, new Map<string, PthTensor>([["rows", { storage: bias, shape: [3, 2], stride: [0, 1] }]]));
  t.deepEqual(Array.from((await readStateDict(path)).stateDict.get("rows")!.data as Float32Array), [0.5, -0.5, 0.5, -0.5, 0.5, -0.5]);
});

test("one storage viewed many times over cannot make a small file allocate gigabytes", async (t) => {
  const path = tempFile(t, "amplified.pth");
  const storage = ndarray(new Float32Array(1 << 20), [1024, 1024]); // 4 MiB
  const views = new Map<string, PthTensor>();
  for (let i = 0; i < 200; i++) views.set(`view${i}`, { storage, shape: [1024, 1024], stride: [1, 1024] }); // 200 transposes: 800 MiB
  writePth(path, views);
  const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError, message: /would need 4194304 bytes as an array, but the checkpoint's tensors already take/ });
  t.regex(error.key!, /^view\d+$/);
});

/** A checkpoint archive holding the given data.pkl and storages, as torch lays it out. */
function checkpointWith(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const path = join(temporaryDirectory().path, "hand.pth");
  const zip = new ZipWriter(path);
  zip.add("hand/data.pkl", pickle);
  for (const [key, data] of Object.entries(storages)) zip.add(`hand/data/${key}`, data, { align: 64 });
  zip.add("hand/version", bytesOf("3\n"));
  zip.finish();
  return readFileSync(path);
}

/** OrderedDict({'t': _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}), with size and stride spelled by `spell`. */
function oneTensor(storageType: string, numel: number, spell: (pickler: Pickler) => Pickler): Uint8Array {
  const pickle = new Pickler().global("collections", "OrderedDict").emptyTuple().reduce().string("t");
  pickle.global("torch._utils", "_rebuild_tensor_v2").mark();
  pickle.mark().string("storage").global("torch", storageType).string("0").string("cpu").int(numel).tuple().persistentId();
  spell(pickle).bool(false).global("collections", "OrderedDict").emptyTuple().reduce();
  return pickle.tuple().reduce().setItem().finish();
}

test("a float 4.0 as a dimension and a negative stride are refused naming the tensor and what is wrong", (t) => {
  const floatDim = checkpointWith(oneTensor("FloatStorage", 4, (p) => p.int(0).mark().float(4).tuple().intTuple([1])), { "0": new Uint8Array(16) });
  const error = t.throws(() => readStateDictFromBytes(floatDim, { file: "f.pth" }), { instanceOf: CheckpointError });
  t.is(error.key, "t");
  t.regex(error.message, /^f\.pth: tensor 't': its size \(4\.0,\) holds the float 4\.0 where an integer belongs$/);
  const negative = checkpointWith(
    oneTensor("FloatStorage", 4, (p) => p.int(3).intTuple([4]).mark().int(-1).tuple()),
    { "0": new Uint8Array(16) },
  );
  t.throws(() => readStateDictFromBytes(negative, { file: "n.pth" }), {
    instanceOf: CheckpointError,
    message: /tensor 't': its stride \(-1,\) has a negative step, which torch never saves \(flip\(\) copies\)/,
  });
});

test("a complex or quantized storage is an unsupported dtype named by torch, not a forbidden global", (t) => {
  for (const [type, dtype] of [["ComplexFloatStorage", "complex64"], ["ComplexDoubleStorage", "complex128"], ["QInt8Storage", "qint8"]]) {
    const bytes = checkpointWith(oneTensor(type, 2, (p) => p.int(0).intTuple([2]).intTuple([1])), { "0": new Uint8Array(32) });
    const error = t.throws(() => readStateDictFromBytes(bytes, { file: "c.pth" }), { instanceOf: CheckpointError }, type);
    t.is(error.key, "t");
    t.regex(error.message, new RegExp(`tensor 't': its dtype ${dtype} \\(torch\\.${type}\\) is not supported; supported: float32, `));
  }
});

/** `_rebuild_tensor_v3(UntypedStorage of n bytes, 0, size, stride, False, OrderedDict(), torch.<dtype>)`, as torch >= 2.1 saves uint16/32/64 and float8. */
function v3Tensor(dtype: string, bytes: number, shape: number[]): Uint8Array {
  const pickle = new Pickler().global("collections", "OrderedDict").emptyTuple().reduce().string("t");
  pickle.global("torch._utils", "_rebuild_tensor_v3").mark();
  pickle.mark().string("storage").global("torch", "UntypedStorage").string("0").string("cpu").int(bytes).tuple().persistentId();
  pickle.int(0).intTuple(shape).intTuple(shape.length === 1 ? [1] : [shape[1], 1]).bool(false);
  pickle.global("collections", "OrderedDict").emptyTuple().reduce().global("torch", dtype);
  return pickle.tuple().reduce().setItem().finish();
}

test("uint16 tensors torch saves with _rebuild_tensor_v3 read; float8 ones are named as unsupported", (t) => {
  const values = Uint16Array.from([0, 1, 65535, 4242]);
  const bytes = checkpointWith(v3Tensor("uint16", 8, [2, 2]), { "0": new Uint8Array(values.buffer) });
  const { stateDict } = readStateDictFromBytes(bytes);
  const tensor = stateDict.get("t") as NdArray<"uint16">;
  t.is(tensor.dtype, "uint16");
  t.deepEqual(tensor.shape, [2, 2]);
  t.deepEqual(Array.from(tensor.data), [0, 1, 65535, 4242]);
  const float8 = checkpointWith(v3Tensor("float8_e4m3fn", 4, [4]), { "0": new Uint8Array(4) });
  t.throws(() => readStateDictFromBytes(float8), { instanceOf: CheckpointError, message: /tensor 't': its dtype float8_e4m3fn \(torch\.float8_e4m3fn\) is not supported/ });
  // Only dtypes are accepted where the dtype goes: torch.nn.Module stays forbidden.
  const module = checkpointWith(v3Tensor("nn", 4, [4]), { "0": new Uint8Array(4) });
  t.throws(() => readStateDictFromBytes(module), { instanceOf: CheckpointError, message: /forbidden pickle global 'torch\.nn'/ });
});
