import test from "ava";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Pickler } from "../support/pickler.js";
import { writePth } from "../support/pth_writer.js";
import { readStateDict, readStateDictFromBytes } from "../../lib/checkpoint/state_dict.js";
import { CheckpointError, InputError } from "../../lib/errors.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { bytesOf, rewriteZip } from "./helpers.js";

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

/** A checkpoint archive holding the given data.pkl (and storages), as torch lays it out. */
function checkpointWith(path: string, pickle: Uint8Array, storages: Record<string, Uint8Array> = {}): void {
  const zip = new ZipWriter(path);
  zip.add("evil/data.pkl", pickle);
  for (const [key, data] of Object.entries(storages)) zip.add(`evil/data/${key}`, data, { align: 64 });
  zip.add("evil/version", bytesOf("3\n"));
  zip.finish();
}

async function checkpointError(t: import("ava").ExecutionContext, path: string, message: RegExp): Promise<CheckpointError> {
  const error = await t.throwsAsync(readStateDict(path), { instanceOf: CheckpointError, message });
  t.is(error.code, "ERR_ENDOSYNTH_CHECKPOINT");
  t.is(error.file, path);
  return error;
}

test("a checkpoint whose pickle calls os.system is refused and the command never runs", async (t) => {
  const dir = tempDir(t);
  const marker = join(dir, "MARKER");
  const path = join(dir, "evil.pth");
  // what pickle writes for an object whose __reduce__ returns (os.system, ('touch <marker>',))
  const command = `touch ${marker}`;
  checkpointWith(path, bytesOf([0x80, 0x02], "cos\nsystem\n", [0x71, 0x00, 0x58, command.length, 0, 0, 0], command, [0x85, 0x52, 0x2e]));
  const error = await checkpointError(t, path, /forbidden pickle global 'os\.system'/);
  t.is(error.key, "evil/data.pkl");
  t.regex(error.message, /nothing was executed/);
  t.false(existsSync(marker));
});

test("a checkpoint whose pickle reaches builtins.eval inside a state dict is refused", async (t) => {
  const dir = tempDir(t);
  const marker = join(dir, "MARKER");
  const path = join(dir, "evil.pth");
  const code = `open(${JSON.stringify(marker)}, 'w')`;
  // OrderedDict({'w': eval(code)}): the global hides behind an allowed one
  const pickle = new Pickler().global("collections", "OrderedDict").emptyTuple().reduce().string("w");
  pickle.global("builtins", "eval").mark().string(code).tuple().reduce().setItem();
  checkpointWith(path, pickle.finish());
  await checkpointError(t, path, /forbidden pickle global 'builtins\.eval'/);
  t.false(existsSync(marker));
});

test("a legacy (pre-1.6) checkpoint is refused with how to re-save it", async (t) => {
  const path = join(tempDir(t), "old.pth");
  // legacy torch.save starts with pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2), then the protocol version 1001
  writeFileSync(path, bytesOf([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e], [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]));
  const error = await checkpointError(t, path, /legacy \(pre-1\.6, non-zip\) format/);
  t.regex(error.message, /re-save it with torch >= 1\.6/);
  t.regex(error.message, /torch\.save\(torch\.load\('old\.pth', map_location='cpu'\), 'new\.pth'\)/);
});

test("a truncated checkpoint is refused as a truncated zip, naming the file", async (t) => {
  const path = join(tempDir(t), "cut.pth");
  const whole = readFileSync(fixture("dav1", "tiny.pth"));
  writeFileSync(path, whole.subarray(0, Math.floor(whole.length / 2)));
  const error = await checkpointError(t, path, /the zip archive is truncated or corrupt/);
  t.regex(error.message, /cut\.pth/);
});

test("a checkpoint missing one storage member is refused, naming the tensor and the member", async (t) => {
  const path = join(tempDir(t), "missing.pth");
  rewriteZip(fixture("dav1", "tiny.pth"), path, (name, data) => (name === "tiny/data/5" ? undefined : data));
  const error = await checkpointError(t, path, /its storage tiny\/data\/5 is missing from the archive/);
  // torch numbers storages in the order the tensors are pickled: the sixth key owns storage 5
  t.is(error.key, "pretrained.blocks.0.norm1.weight");
  t.regex(error.message, /tensor 'pretrained\.blocks\.0\.norm1\.weight'/);
});

test("a storage member shorter than its declared size is refused, naming the tensor", async (t) => {
  const path = join(tempDir(t), "short.pth");
  rewriteZip(fixture("dav1", "tiny.pth"), path, (name, data) => (name === "tiny/data/1" ? data.subarray(0, 1000) : data));
  const error = await checkpointError(t, path, /its storage tiny\/data\/1 holds 1000 bytes but is declared as \d+ float32 elements/);
  t.is(error.key, "pretrained.pos_embed");
});

test("a tensor view reaching past its storage is refused, naming the tensor", async (t) => {
  const path = join(tempDir(t), "view.pth");
  // OrderedDict({'big': _rebuild_tensor_v2(storage of 4 floats, 0, (3, 3), (3, 1), False, OrderedDict())})
  const pickle = new Pickler().global("collections", "OrderedDict").emptyTuple().reduce().string("big");
  pickle.global("torch._utils", "_rebuild_tensor_v2").mark();
  pickle.mark().string("storage").global("torch", "FloatStorage").string("0").string("cpu").int(4).tuple().persistentId();
  pickle.int(0).intTuple([3, 3]).intTuple([3, 1]).bool(false).global("collections", "OrderedDict").emptyTuple().reduce();
  pickle.tuple().reduce().setItem();
  checkpointWith(path, pickle.finish(), { "0": new Uint8Array(16) });
  const error = await checkpointError(t, path, /tensor 'big': its storage evil\/data\/0 is too small for it: shape \(3, 3\), stride \(3, 1\) and offset 0 reach element 9 but the storage has 4/);
  t.is(error.key, "big");
});

test("files that are not checkpoints are refused, saying what they are not", async (t) => {
  const npy = fixture("dav1", "input.npy");
  const error = await checkpointError(t, npy, /is neither a PyTorch checkpoint .* nor a safetensors file; it starts with bytes 93 4e 55 4d 50 59/);
  t.regex(error.message, /input\.npy/);
  const npz = fixture("utils", "sample_a.npz");
  await checkpointError(t, npz, /is a zip archive but not a PyTorch checkpoint: it has no <stem>\/data\.pkl member/);
  const empty = join(tempDir(t), "empty.pth");
  writeFileSync(empty, new Uint8Array(0));
  await checkpointError(t, empty, /empty\.pth is empty/);
});

test("a missing file is refused, naming the path", async (t) => {
  const path = join(tempDir(t), "checkpoints", "dav1-f.pth");
  const error = await checkpointError(t, path, /cannot be opened: no such file/);
  t.true(error.message.includes(path));
  await checkpointError(t, tempDir(t), /is not a regular file/);
});

test("tensors under a key of their own are refused with a hint naming that key, and read with stateDictKey", async (t) => {
  const path = join(tempDir(t), "training.pth");
  writePth(path, new Map([["w", ndarray(Float32Array.from([1]), [1])]]), { wrapIn: "net", extra: new Map([["epoch", 3]]) });
  const error = await checkpointError(t, path, /holds no tensors at its top level: its 1 tensors are under 'net'/);
  t.is(error.key, "net");
  t.regex(error.message, /pass \{ stateDictKey: 'net' \}/);
  t.regex(error.message, /torch\.save\(torch\.load\('in\.pth', map_location='cpu'\)\['net'\], 'out\.pth'\)/);
  const { stateDict, info } = await readStateDict(path, { stateDictKey: "net" });
  t.deepEqual([...stateDict.keys()], ["w"]);
  t.is(info.wrapper, "net");
  t.deepEqual(info.dropped, [{ key: "epoch", type: "an int" }]);

  const inner = join(tempDir(t), "inner.pth");
  writePth(inner, new Map([["w", ndarray(Float32Array.from([1]), [1])]]), { wrapIn: "model", extra: new Map([["epoch", 3]]) });
  t.is((await readStateDict(inner)).info.wrapper, "model");
});

test("bad arguments are InputErrors naming the argument", async (t) => {
  await t.throwsAsync(readStateDict(""), { instanceOf: InputError, message: /Expected a non-empty string for path/ });
  const path = fixture("dav1", "tiny.pth");
  await t.throwsAsync(readStateDict(path, { halfPrecision: "float32" as never }), {
    instanceOf: InputError,
    message: /Expected one of "decoded", "raw" for options.halfPrecision but received "float32"/,
  });
  await t.throwsAsync(readStateDict(path, { mmap: true } as never), { instanceOf: InputError, message: /Unknown option "mmap"/ });
  t.throws(() => readStateDictFromBytes("abc" as never), { instanceOf: InputError, message: /Expected a Uint8Array for bytes/ });
});

test("the writer refuses dtypes torch cannot store and views outside their storage", (t) => {
  const path = join(tempDir(t), "bad.pth");
  t.throws(() => writePth(path, new Map([["u16", ndarray(Uint16Array.from([1]), [1])]])), {
    instanceOf: InputError,
    message: /Expected a dtype torch can store .* for u16\.dtype but received "uint16"/,
  });
  const storage = ndarray(Float32Array.from([1, 2, 3]), [3]);
  t.throws(() => writePth(path, new Map([["v", { storage, shape: [2, 2] }]])), {
    instanceOf: InputError,
    message: /Tensor 'v': shape \(2, 2\), stride \(2, 1\) and offset 0 do not fit its storage of 3 elements/,
  });
  t.false(existsSync(path));
});
