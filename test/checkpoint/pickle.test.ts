import test from "ava";
import { CheckpointError } from "../../lib/errors.js";
import { PyFloat, unpickle, type PickleGlobal } from "../../lib/checkpoint/pickle.js";
import { Pickler } from "../support/pickler.js";

/** Written by CPython 3.11 `pickle.dumps(obj, protocol=p)` for the `obj` spelled out in the test below. */
const PYTHON_PICKLES: Record<number, string> = {
  2:
    "80027d7100285804000000696e747371015d7102284b004bff4d00014a000001004affffffff4a000000808a0500000080008a07000000000000208a08" +
    "00000000000000808a09000000000000000040655806000000666c6f6174737103473ff80000000000004780000000000000004701a56e1fc2f8f359" +
    "8771045804000000746578747105580a00000068c3a96c6c6f20e29c93710658030000007261777107635f636f646563730a656e636f64650a710858" +
    "0500000000c3bf6162710958060000006c6174696e31710a86710b52710c5805000000656d707479710d635f5f6275696c74696e5f5f0a6279746573" +
    "0a710e2952710f5805000000666c61677371104e888987711158060000006e657374656471127d71132858010000007471142958010000006c71155d" +
    "711675752e",
  4:
    "800495c2000000000000007d94288c04696e7473945d94284b004bff4d00014a000001004affffffff4a000000808a0500000080008a070000000000" +
    "00208a0800000000000000808a09000000000000000040658c06666c6f61747394473ff80000000000004780000000000000004701a56e1fc2f8f359" +
    "87948c0474657874948c0a68c3a96c6c6f20e29c93948c0372617794430400ff6162948c05656d707479944300948c05666c616773944e888987948c" +
    "066e6573746564947d94288c017494298c016c945d9475752e",
};

const noGlobals = { resolveGlobal: () => undefined };

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "hex"));
}

for (const protocol of [2, 4]) {
  test(`reads every plain value type from a CPython protocol ${protocol} pickle`, (t) => {
    // obj = {'ints': [0, 255, 256, 65536, -1, -2**31, 2**31, 2**53, -2**63, 2**70], 'floats': (1.5, -0.0, 1e-300),
    //        'text': 'héllo ✓', 'raw': b'\x00\xffab', 'empty': b'', 'flags': (None, True, False), 'nested': {'t': (), 'l': []}}
    const value = unpickle(hex(PYTHON_PICKLES[protocol]), noGlobals) as Map<string, unknown>;
    t.deepEqual([...value.keys()], ["ints", "floats", "text", "raw", "empty", "flags", "nested"]);
    t.deepEqual(value.get("ints"), [0, 255, 256, 65536, -1, -(2 ** 31), 2 ** 31, 2n ** 53n, -(2n ** 63n), 2n ** 70n]);
    const floats = value.get("floats") as PyFloat[];
    t.true(floats.every((float) => float instanceof PyFloat));
    t.deepEqual(floats.map((float) => float.value), [1.5, -0, 1e-300]);
    t.true(Object.is(floats[1].value, -0));
    t.is(value.get("text"), "héllo ✓");
    t.deepEqual(value.get("raw"), Uint8Array.from([0x00, 0xff, 0x61, 0x62]));
    t.deepEqual(value.get("empty"), new Uint8Array(0));
    t.deepEqual(value.get("flags"), [null, true, false]);
    t.deepEqual(value.get("nested"), new Map<string, unknown>([["t", []], ["l", []]]));
  });
}

test("memoised objects come back as the same object", (t) => {
  // x = [1, 2]; pickle.dumps({'p': x, 'q': x}, protocol=2)
  const value = unpickle(hex("80027d71002858010000007071015d7102284b014b026558010000007171036802752e"), noGlobals) as Map<string, unknown>;
  t.deepEqual(value.get("p"), [1, 2]);
  t.is(value.get("p"), value.get("q"));
});

test("an allowed global is called with its unpickled arguments and BUILD goes to its setState", (t) => {
  const calls: unknown[] = [];
  const states: unknown[] = [];
  const point: PickleGlobal = {
    name: "geometry.Point",
    call: (args) => {
      calls.push(args);
      return { x: args[0] };
    },
    setState: (target, state) => states.push([target, state]),
  };
  // geometry.Point(3) then BUILD with the state 'tag'
  const bytes = Buffer.concat([
    Buffer.from([0x80, 0x02]),
    Buffer.from("cgeometry\nPoint\n", "latin1"),
    Buffer.from([0x4b, 3, 0x85, 0x52]), // BININT1 3, TUPLE1, REDUCE
    Buffer.from([0x58, 3, 0, 0, 0]),
    Buffer.from("tag", "latin1"),
    Buffer.from([0x62, 0x2e]), // BUILD, STOP
  ]);
  const value = unpickle(bytes, { resolveGlobal: (module, name) => (`${module}.${name}` === "geometry.Point" ? point : undefined) });
  t.deepEqual(value, { x: 3 });
  t.deepEqual(calls, [[3]]);
  t.deepEqual(states, [[{ x: 3 }, "tag"]]);
});

test("refuses a global the resolver does not allow, naming it, before anything runs", (t) => {
  // Python: class A: __reduce__ = lambda self: (os.system, ('touch MARKER',)) → protocol 2, with the module spelled 'os'.
  const bytes = Buffer.concat([
    Buffer.from([0x80, 0x02]),
    Buffer.from("cos\nsystem\nq\x00X\x0c\x00\x00\x00touch MARKERq\x01\x85q\x02Rq\x03.", "latin1"),
  ]);
  let asked = 0;
  const error = t.throws(
    () => unpickle(bytes, { file: "evil.pth", entry: "evil/data.pkl", resolveGlobal: () => (asked++, undefined) }),
    { instanceOf: CheckpointError },
  );
  t.is(error.code, "ERR_ENDOSYNTH_CHECKPOINT");
  t.is(error.file, "evil.pth");
  t.is(error.key, "evil/data.pkl");
  t.regex(error.message, /forbidden pickle global 'os\.system'/);
  t.regex(error.message, /evil\.pth/);
  t.is(asked, 1);
});

test("refuses a global named through STACK_GLOBAL (protocol 4)", (t) => {
  const bytes = Buffer.concat([
    Buffer.from([0x80, 0x04, 0x8c, 8]),
    Buffer.from("builtins", "latin1"),
    Buffer.from([0x8c, 4]),
    Buffer.from("eval", "latin1"),
    Buffer.from([0x93, 0x8c, 1, 0x31, 0x85, 0x52, 0x2e]), // STACK_GLOBAL, '1', TUPLE1, REDUCE, STOP
  ]);
  const error = t.throws(() => unpickle(bytes, noGlobals), { instanceOf: CheckpointError });
  t.regex(error.message, /forbidden pickle global 'builtins\.eval'/);
});

test("refuses _codecs.encode with anything but the latin1 spelling of bytes", (t) => {
  const pickler = new Pickler().global("_codecs", "encode").mark().string("x").string("rot13").tuple().reduce();
  const error = t.throws(() => unpickle(pickler.finish(), noGlobals), { instanceOf: CheckpointError });
  t.regex(error.message, /_codecs\.encode is only accepted as encode\(str, 'latin1'\)/);
});

test("refuses calling a plain value and an unknown opcode", (t) => {
  // 'x' then () then REDUCE: a string is not callable
  const notCallable = Buffer.from([0x80, 0x02, 0x8c, 1, 0x78, 0x29, 0x52, 0x2e]);
  t.throws(() => unpickle(notCallable, noGlobals), { instanceOf: CheckpointError, message: /REDUCE\/NEWOBJ on something that is not a global/ });
  // INST (protocol 0 'i') is not supported
  const inst = Buffer.from("(ios\nsystem\n.", "latin1");
  t.throws(() => unpickle(inst, noGlobals), { instanceOf: CheckpointError, message: /unsupported pickle opcode 0x69 \(pickle byte 1\)/ });
});

test("a truncated pickle and one without STOP are errors, not partial values", (t) => {
  const full = hex(PYTHON_PICKLES[2]);
  t.throws(() => unpickle(full.subarray(0, 40), noGlobals), { instanceOf: CheckpointError, message: /truncated/ });
  t.throws(() => unpickle(full.subarray(0, full.length - 1), noGlobals), { instanceOf: CheckpointError, message: /without a STOP opcode/ });
});

test("BINPERSID goes to persistentLoad, and is refused without one", (t) => {
  const bytes = new Pickler().mark().string("storage").int(7).tuple().persistentId().finish();
  t.deepEqual(unpickle(bytes, { ...noGlobals, persistentLoad: (pid) => ({ loaded: pid }) }), { loaded: ["storage", 7] });
  t.throws(() => unpickle(bytes, noGlobals), { instanceOf: CheckpointError, message: /persistent id/ });
});

test("the pickler's integers and floats read back exactly", (t) => {
  const values = [0, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1];
  const pickler = new Pickler().emptyList();
  for (const value of values) pickler.int(value).append();
  pickler.int(2n ** 64n).append().int(-(2n ** 64n)).append().float(0.1).append().float(-Infinity).append();
  t.deepEqual(unpickle(pickler.finish(), noGlobals), [...values, 2n ** 64n, -(2n ** 64n), new PyFloat(0.1), new PyFloat(-Infinity)]);
});

test("a huge APPENDS and a huge LONG4 neither overflow the stack nor take quadratic time", (t) => {
  const count = 300_000;
  const items = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i++) items.set([0x4b, i & 0xff], i * 2); // BININT1
  const list = unpickle(Buffer.concat([Buffer.from([0x80, 0x02, 0x5d, 0x28]), items, Buffer.from([0x65, 0x2e])]), noGlobals) as number[];
  t.is(list.length, count);
  t.is(list[count - 1], (count - 1) & 0xff);
  // LONG4 of 200000 bytes 0x01..: 256^199999 + ... ; check its size in bits
  const digits = Buffer.alloc(200_000, 0x01);
  const length = Buffer.alloc(4);
  length.writeInt32LE(digits.length);
  const value = unpickle(Buffer.concat([Buffer.from([0x80, 0x02, 0x8b]), length, digits, Buffer.from([0x2e])]), noGlobals) as bigint;
  t.is(value.toString(16).length, 2 * digits.length - 1); // "10101...01": leading zero nibble dropped
});

test("containers nested 101 deep are refused, whatever builds them", (t) => {
  // ((((...[],),),),): EMPTY_LIST, then TUPLE1 wraps what is on top, 100 times: 101 levels.
  const deep = [0x80, 0x02, 0x5d, ...new Array(100).fill(0x85), 0x2e];
  t.is((unpickle(Uint8Array.from([0x80, 0x02, 0x5d, ...new Array(99).fill(0x85), 0x2e]), noGlobals) as unknown[]).length, 1);
  t.throws(() => unpickle(Uint8Array.from(deep), noGlobals), { instanceOf: CheckpointError, message: /containers nested more than 100 deep/ });
  // A list appended to itself grows one level per APPEND, and stops at the limit too.
  const self = [0x80, 0x02, 0x5d, 0x71, 0x00];
  for (let i = 0; i < 200; i++) self.push(0x68, 0x00, 0x61); // BINGET 0, APPEND
  self.push(0x2e);
  t.throws(() => unpickle(Uint8Array.from(self), noGlobals), { instanceOf: CheckpointError, message: /nested more than 100 deep/ });
});

test("a pickle building far more than its size (a megabyte of EMPTY_DICT) is refused, not built", (t) => {
  const dicts = Buffer.alloc(1 << 20, 0x7d); // 1M empty dicts, ~150 MB of Maps
  const error = t.throws(() => unpickle(Buffer.concat([Buffer.from([0x80, 0x02]), dicts, Buffer.from([0x2e])]), { ...noGlobals, file: "f.pth", entry: "f/data.pkl" }), {
    instanceOf: CheckpointError,
  });
  t.regex(error.message, /^f\.pth: f\/data\.pkl: it builds more than \d+ bytes of objects, far more than a pickle of 1048579 bytes holds honestly/);
  t.is(error.key, "f/data.pkl");
});

test("an integer longer than 256 KiB is refused before BigInt would throw an untyped RangeError", (t) => {
  const length = Buffer.alloc(4);
  length.writeInt32LE(300_000);
  const long = Buffer.concat([Buffer.from([0x80, 0x02, 0x8b]), length, Buffer.alloc(300_000, 1), Buffer.from([0x2e])]);
  t.throws(() => unpickle(long, noGlobals), { instanceOf: CheckpointError, message: /an integer of 300000 bytes, more than the 262144 accepted/ });
});
