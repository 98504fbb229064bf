/**
 * A small, strict unpickler for what `torch.save` writes: Python pickle protocols 2 to 5 as emitted
 * by Python 3 for dicts, lists, tuples, ints, floats, strings, bytes, None and booleans, plus memo,
 * persistent-id (BINPERSID) and object-construction opcodes.
 *
 * Nothing is ever executed. A `GLOBAL` opcode is resolved only through the caller's
 * {@link UnpickleOptions.resolveGlobal}, which returns a data constructor written in TypeScript or
 * `undefined`; any other global stops the parse at once with a {@link CheckpointError} naming it
 * ("forbidden pickle global 'os.system'"), before anything could be called.
 *
 * Python values map to: None → `null`, bool → `boolean`, int → `number` (a `bigint` beyond 2^53),
 * float → {@link PyFloat} (so `4.0` never passes for the integer 4), str → `string`, bytes →
 * `Uint8Array`, list and tuple → arrays, dict → `Map`; a global used as a value (a storage type
 * inside a persistent id) is the {@link PickleGlobal} the resolver returned.
 *
 * Bounded: the parse is a loop over opcodes (no recursion), containers nest at most
 * {@link MAX_NESTING} deep, integers take at most {@link MAX_LONG_BYTES} bytes, and what the pickle
 * builds is charged against a memory budget (16 MiB plus 14 bytes per pickle byte, a sixth above
 * what real state dicts build), so a hostile pickle of a few megabytes cannot build gigabytes of
 * empty dicts.
 * @module
 */
import { CheckpointError } from "../errors.js";

/** A Python float, boxed so that it stays distinguishable from an int of the same value. */
export class PyFloat {
  constructor(
    /** The float's value. */
    readonly value: number,
  ) {}
}

/** Deepest container nesting accepted: a state dict nests 3 or 4 deep. */
export const MAX_NESTING = 100;
/** Longest LONG1/LONG4 integer accepted, in bytes (far past any real one; V8's BigInt stops at 128 MiB). */
export const MAX_LONG_BYTES = 256 * 1024;
/** Memory every pickle may build regardless of its size, in bytes. */
const BASE_BUDGET = 16 * 1024 * 1024;
/**
 * Bytes each pickle byte may build on top of that: real state dicts build about 12 (the tiny
 * fixtures' pickles: 11.8, 12.3, 11.6), so a hostile pickle builds at most a sixth more than an
 * honest one of its size, plus 16 MiB.
 */
const BUDGET_PER_BYTE = 14;
/**
 * What the unpickler builds, in bytes of V8 heap as measured on Node 20 (an empty Map 193, an
 * empty array 40, plus ~35 for the entry recording its depth; a boxed float 57), rounded up.
 */
const COST = { slot: 8, array: 80, map: 240, entry: 32, float: 64, string: 24, bytes: 64 } as const;

/**
 * A Python global the caller allows: what calling it (REDUCE, NEWOBJ) builds, and optionally how
 * BUILD sets the state of what it built.
 */
export interface PickleGlobal {
  /** Python's dotted name, for messages: `"collections.OrderedDict"`. */
  readonly name: string;
  /** Builds the value `name(*args)` stands for, from already-unpickled arguments. */
  call(args: readonly unknown[]): unknown;
  /** Applies a BUILD state to an object this global made; without it BUILD is refused. */
  setState?(target: unknown, state: unknown): void;
}

/** Where the pickle comes from (for messages) and how its globals and persistent ids resolve. */
export interface UnpickleOptions {
  /** The file the pickle was read from. */
  file?: string;
  /** The archive entry holding the pickle, e.g. `"model/data.pkl"`. */
  entry?: string;
  /** The allowed global `module.name`, or `undefined` to refuse it. */
  resolveGlobal(module: string, name: string): PickleGlobal | undefined;
  /** Turns a persistent id (BINPERSID) into a value; BINPERSID is refused without it. */
  persistentLoad?(pid: unknown): unknown;
}

/** Opcodes of pickle protocols 2 to 5 that this unpickler (and our pickle writer) use. */
export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, LONG4: 0x8b, BINFLOAT: 0x47,
  BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINBYTES8: 0x8e, BINSTRING: 0x54, SHORT_BINSTRING: 0x55,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65, LIST: 0x6c,
  EMPTY_DICT: 0x7d, DICT: 0x64, SETITEM: 0x73, SETITEMS: 0x75,
  BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94, BINGET: 0x68, LONG_BINGET: 0x6a,
  GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, NEWOBJ: 0x81, BUILD: 0x62, BINPERSID: 0x51,
  PROTO: 0x80, FRAME: 0x95,
} as const;

/**
 * Bytes under protocol 2: Python 3 pickles `b"..."` as `_codecs.encode("...", "latin1")` (and
 * `b""` as `bytes()`). These pure data constructors are implemented here, so the only way bytes
 * can be spelled in a protocol-2 pickle works without allowing anything that executes code.
 */
const BYTES_GLOBALS: ReadonlyMap<string, PickleGlobal> = new Map([
  ["_codecs.encode", { name: "_codecs.encode", call: encodeLatin1 }],
  ["__builtin__.bytes", { name: "__builtin__.bytes", call: emptyBytes }],
  ["builtins.bytes", { name: "builtins.bytes", call: emptyBytes }],
]);

function encodeLatin1(args: readonly unknown[]): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
    throw new TypeError("_codecs.encode is only accepted as encode(str, 'latin1'), the way pickle spells bytes");
  }
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function emptyBytes(args: readonly unknown[]): Uint8Array {
  if (args.length !== 0) throw new TypeError("bytes(...) is only accepted without arguments, the way pickle spells b''");
  return new Uint8Array(0);
}

const utf8 = new TextDecoder("utf-8");
const latin1 = new TextDecoder("latin1");

/**
 * Unpickles `bytes` with only the globals `options.resolveGlobal` allows.
 * @throws {@link endosynth!CheckpointError | CheckpointError} on a forbidden global, an unsupported opcode or a malformed pickle; the
 * message names the file, the entry and the byte offset.
 * @example
 * ```ts
 * const value = unpickle(bytes, { resolveGlobal: () => undefined }); // plain data only
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  return new Unpickler(bytes, options).run();
}

class Unpickler {
  private readonly view: DataView;
  private position = 0;
  private opcodeStart = 0;
  private stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  /** The globals this pickle resolved: the only things REDUCE/NEWOBJ will call. */
  private readonly resolved = new Set<PickleGlobal>();
  /** Which global built each object, so BUILD can ask that global to set its state. */
  private readonly builtBy = new WeakMap<object, PickleGlobal>();
  /** How deep each list, tuple and dict nests (1 for one holding no container). */
  private readonly depths = new WeakMap<object, number>();
  /** Estimated bytes this pickle may still build. */
  private budget: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.budget = BASE_BUDGET + BUDGET_PER_BYTE * bytes.byteLength;
  }

  run(): unknown {
    while (this.position < this.bytes.length) {
      this.opcodeStart = this.position;
      const opcode = this.bytes[this.position++];
      if (opcode === OP.STOP) {
        if (this.stack.length !== 1 || this.marks.length !== 0) throw this.fail("STOP with an unbalanced stack");
        return this.stack[0];
      }
      this.execute(opcode);
    }
    throw this.fail("the pickle ends without a STOP opcode (truncated?)");
  }

  private execute(opcode: number): void {
    switch (opcode) {
      case OP.PROTO: {
        const protocol = this.readUint8();
        if (protocol > 5) throw this.fail(`unsupported pickle protocol ${protocol}`);
        return;
      }
      case OP.FRAME: this.readLength(8); return; // framing only helps streaming readers
      case OP.MARK: this.charge(COST.slot); this.marks.push(this.stack.length); return;
      case OP.POP: this.pop(); return;
      case OP.POP_MARK: this.popMark(); return;
      case OP.DUP: this.push(this.top()); return;
      case OP.NONE: this.push(null); return;
      case OP.NEWTRUE: this.push(true); return;
      case OP.NEWFALSE: this.push(false); return;
      case OP.BININT: this.push(this.view.getInt32(this.advance(4), true)); return;
      case OP.BININT1: this.push(this.readUint8()); return;
      case OP.BININT2: this.push(this.view.getUint16(this.advance(2), true)); return;
      case OP.LONG1: this.push(this.readLong(this.readUint8())); return;
      case OP.LONG4: this.push(this.readLong(this.view.getInt32(this.advance(4), true))); return;
      case OP.BINFLOAT: this.charge(COST.float); this.push(new PyFloat(this.view.getFloat64(this.advance(8), false))); return;
      case OP.BINUNICODE: this.push(this.decodeText(utf8, this.readLength(4))); return;
      case OP.SHORT_BINUNICODE: this.push(this.decodeText(utf8, this.readUint8())); return;
      case OP.BINUNICODE8: this.push(this.decodeText(utf8, this.readLength(8))); return;
      case OP.BINBYTES: this.push(this.copyBytes(this.readLength(4))); return;
      case OP.SHORT_BINBYTES: this.push(this.copyBytes(this.readUint8())); return;
      case OP.BINBYTES8: this.push(this.copyBytes(this.readLength(8))); return;
      // Python 2 `str`, as in checkpoints pickled by Python 2: read as text, like torch's latin1 loads.
      case OP.BINSTRING: this.push(this.decodeText(latin1, this.readLength(4))); return;
      case OP.SHORT_BINSTRING: this.push(this.decodeText(latin1, this.readUint8())); return;
      case OP.EMPTY_TUPLE: this.push(this.container([])); return;
      case OP.TUPLE: this.push(this.container(this.popMark())); return;
      case OP.TUPLE1: this.push(this.container(this.popN(1))); return;
      case OP.TUPLE2: this.push(this.container(this.popN(2))); return;
      case OP.TUPLE3: this.push(this.container(this.popN(3))); return;
      case OP.EMPTY_LIST: this.push(this.container([])); return;
      case OP.LIST: this.push(this.container(this.popMark())); return;
      case OP.APPEND: { const item = this.pop(); this.add(this.list(this.top()), [item]); return; }
      case OP.APPENDS: { const items = this.popMark(); this.add(this.list(this.top()), items); return; }
      case OP.EMPTY_DICT: this.push(this.container(new Map())); return;
      case OP.DICT: { const items = this.popMark(); this.push(this.add(this.container(new Map()), items)); return; }
      case OP.SETITEM: { const items = this.popN(2); this.add(this.dict(this.top()), items); return; }
      case OP.SETITEMS: { const items = this.popMark(); this.add(this.dict(this.top()), items); return; }
      case OP.BINPUT: this.remember(this.readUint8()); return;
      case OP.LONG_BINPUT: this.remember(this.readLength(4)); return;
      case OP.MEMOIZE: this.remember(this.memo.size); return;
      case OP.BINGET: this.push(this.recall(this.readUint8())); return;
      case OP.LONG_BINGET: this.push(this.recall(this.readLength(4))); return;
      case OP.GLOBAL: { const module = this.readLine(); this.push(this.resolve(module, this.readLine())); return; }
      case OP.STACK_GLOBAL: { const [module, name] = this.popN(2); this.push(this.resolve(this.text(module), this.text(name))); return; }
      case OP.REDUCE: case OP.NEWOBJ: { const args = this.pop(); this.push(this.call(this.pop(), args)); return; }
      case OP.BUILD: { const state = this.pop(); this.build(this.top(), state); return; }
      case OP.BINPERSID: this.push(this.persistentLoad(this.pop())); return;
      default:
        throw this.fail(`unsupported pickle opcode 0x${opcode.toString(16).padStart(2, "0")}`);
    }
  }

  private resolve(module: string, name: string): PickleGlobal {
    const dotted = `${module}.${name}`;
    const global = BYTES_GLOBALS.get(dotted) ?? this.options.resolveGlobal(module, name);
    if (!global) {
      throw this.fail(
        `forbidden pickle global '${dotted}': only tensors, dicts and plain values are accepted, so it was refused and nothing was executed`,
      );
    }
    this.resolved.add(global);
    return global;
  }

  private call(callable: unknown, args: unknown): unknown {
    if (!this.resolved.has(callable as PickleGlobal)) throw this.fail("REDUCE/NEWOBJ on something that is not a global");
    const global = callable as PickleGlobal;
    if (!Array.isArray(args)) throw this.fail(`the arguments of ${global.name} are not a tuple`);
    const result = this.guard(global.name, () => global.call(args));
    this.charge(COST.map);
    if (typeof result === "object" && result !== null) this.builtBy.set(result, global);
    return result;
  }

  private build(target: unknown, state: unknown): void {
    const global = typeof target === "object" && target !== null ? this.builtBy.get(target) : undefined;
    if (!global?.setState) throw this.fail(`BUILD on ${global ? `a ${global.name}` : "a value"} that takes no state`);
    global.setState(target, state);
  }

  private persistentLoad(pid: unknown): unknown {
    if (!this.options.persistentLoad) throw this.fail("a persistent id (BINPERSID) where none is expected");
    const load = this.options.persistentLoad;
    return this.guard("persistent id", () => load(pid));
  }

  /** Runs a caller's callback; its plain errors become CheckpointErrors that say where. */
  private guard<T>(what: string, callback: () => T): T {
    try {
      return callback();
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw this.fail(`${what}: ${(error as Error).message}`, error);
    }
  }

  /** Charges what a new container costs, and records its nesting depth from what it holds. */
  private container<T extends unknown[] | Map<unknown, unknown>>(value: T): T {
    this.charge(value instanceof Map ? COST.map : COST.array);
    this.depths.set(value, 1);
    if (Array.isArray(value)) this.add(value, value.splice(0));
    return value;
  }

  /**
   * Adds items to a list or tuple (in order) or key/value pairs to a dict, charging their slots
   * and keeping the container's depth (one more than its deepest item) within {@link MAX_NESTING}.
   */
  private add<T extends unknown[] | Map<unknown, unknown>>(target: T, items: unknown[]): T {
    let depth = this.depths.get(target) ?? 1;
    for (const item of items) {
      const inner = typeof item === "object" && item !== null ? this.depths.get(item) : undefined;
      if (inner !== undefined && inner + 1 > depth) depth = inner + 1;
    }
    if (depth > MAX_NESTING) throw this.fail(`containers nested more than ${MAX_NESTING} deep`);
    this.depths.set(target, depth);
    if (target instanceof Map) {
      if (items.length % 2 !== 0) throw this.fail("SETITEMS with an odd number of items");
      this.charge((items.length / 2) * COST.entry);
      for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    } else {
      this.charge(items.length * COST.slot);
      for (const item of items) target.push(item);
    }
    return target;
  }

  private remember(index: number): void {
    this.charge(COST.entry);
    this.memo.set(index, this.top());
  }

  private decodeText(decoder: typeof utf8, length: number): string {
    const bytes = this.readBytes(length);
    this.charge(COST.string + 2 * length);
    return decoder.decode(bytes);
  }

  private copyBytes(length: number): Uint8Array {
    const bytes = this.readBytes(length);
    this.charge(COST.bytes + length);
    return bytes.slice();
  }

  /** Spends estimated memory; a pickle that builds far more than its size suggests is refused. */
  private charge(bytes: number): void {
    this.budget -= bytes;
    if (this.budget < 0) {
      throw this.fail(`it builds more than ${BASE_BUDGET + BUDGET_PER_BYTE * this.bytes.byteLength} bytes of objects, far more than a pickle of ${this.bytes.byteLength} bytes holds honestly`);
    }
  }

  private list(value: unknown): unknown[] {
    if (!Array.isArray(value)) throw this.fail("APPEND to something that is not a list");
    return value;
  }

  private dict(value: unknown): Map<unknown, unknown> {
    if (!(value instanceof Map)) throw this.fail("SETITEM on something that is not a dict");
    return value;
  }

  private text(value: unknown): string {
    if (typeof value !== "string") throw this.fail("STACK_GLOBAL with a module or name that is not a string");
    return value;
  }

  private recall(index: number): unknown {
    if (!this.memo.has(index)) throw this.fail(`memo entry ${index} read before it was written`);
    return this.memo.get(index);
  }

  private push(value: unknown): void {
    this.charge(COST.slot);
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) throw this.fail("stack underflow");
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) throw this.fail("stack underflow");
    return this.stack[this.stack.length - 1];
  }

  private popN(count: number): unknown[] {
    if (this.stack.length - count < (this.marks.at(-1) ?? 0)) throw this.fail("stack underflow");
    return this.stack.splice(this.stack.length - count, count);
  }

  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw this.fail("no MARK to pop to");
    return this.stack.splice(mark);
  }

  /** Moves past `count` bytes and returns where they start. */
  private advance(count: number): number {
    if (this.position + count > this.bytes.length) throw this.fail("the pickle is truncated");
    const start = this.position;
    this.position += count;
    return start;
  }

  private readUint8(): number {
    return this.bytes[this.advance(1)];
  }

  /** An unsigned length of 4 or 8 bytes (checked against what is left of the pickle when used). */
  private readLength(width: 4 | 8): number {
    const start = this.advance(width);
    return width === 4 ? this.view.getUint32(start, true) : Number(this.view.getBigUint64(start, true));
  }

  private readBytes(count: number): Uint8Array {
    const start = this.advance(count);
    return this.bytes.subarray(start, start + count);
  }

  private readLine(): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) throw this.fail("the pickle is truncated");
    const line = utf8.decode(this.bytes.subarray(this.position, end));
    this.position = end + 1;
    return line;
  }

  /** A little-endian two's complement integer of `count` bytes (LONG1, LONG4). */
  private readLong(count: number): number | bigint {
    if (count < 0) throw this.fail("a negative LONG4 length");
    if (count > MAX_LONG_BYTES) throw this.fail(`an integer of ${count} bytes, more than the ${MAX_LONG_BYTES} accepted`);
    if (count === 0) return 0;
    this.charge(count);
    const digits = this.readBytes(count);
    // via hex text: linear in the length, where shifting a BigInt byte by byte would be quadratic
    let value = BigInt(`0x${Buffer.from(digits).reverse().toString("hex")}`);
    if (digits[count - 1] & 0x80) value -= 1n << BigInt(8 * count);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private fail(message: string, cause?: unknown): CheckpointError {
    const { file, entry } = this.options;
    const where = [file, entry].filter((part) => part !== undefined).join(": ");
    return new CheckpointError(`${where ? `${where}: ` : ""}${message} (pickle byte ${this.opcodeStart})`, {
      file,
      key: entry,
      cause,
    });
  }
}
