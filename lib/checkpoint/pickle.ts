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
 * float → `number`, str → `string`, bytes → `Uint8Array`, list and tuple → arrays, dict → `Map`; a
 * global used as a value (a storage type inside a persistent id) is the {@link PickleGlobal} the
 * resolver returned.
 * @internal
 * @module
 */
import { CheckpointError } from "../errors.js";

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
 * @throws {CheckpointError} on a forbidden global, an unsupported opcode or a malformed pickle; the
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

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
      case OP.MARK: this.marks.push(this.stack.length); return;
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
      case OP.BINFLOAT: this.push(this.view.getFloat64(this.advance(8), false)); return;
      case OP.BINUNICODE: this.push(utf8.decode(this.readBytes(this.readLength(4)))); return;
      case OP.SHORT_BINUNICODE: this.push(utf8.decode(this.readBytes(this.readUint8()))); return;
      case OP.BINUNICODE8: this.push(utf8.decode(this.readBytes(this.readLength(8)))); return;
      case OP.BINBYTES: this.push(this.readBytes(this.readLength(4)).slice()); return;
      case OP.SHORT_BINBYTES: this.push(this.readBytes(this.readUint8()).slice()); return;
      case OP.BINBYTES8: this.push(this.readBytes(this.readLength(8)).slice()); return;
      // Python 2 `str`, as in checkpoints pickled by Python 2: read as text, like torch's latin1 loads.
      case OP.BINSTRING: this.push(latin1.decode(this.readBytes(this.readLength(4)))); return;
      case OP.SHORT_BINSTRING: this.push(latin1.decode(this.readBytes(this.readUint8()))); return;
      case OP.EMPTY_TUPLE: this.push([]); return;
      case OP.TUPLE: this.push(this.popMark()); return;
      case OP.TUPLE1: this.push(this.popN(1)); return;
      case OP.TUPLE2: this.push(this.popN(2)); return;
      case OP.TUPLE3: this.push(this.popN(3)); return;
      case OP.EMPTY_LIST: this.push([]); return;
      case OP.LIST: this.push(this.popMark()); return;
      case OP.APPEND: { const item = this.pop(); this.list(this.top()).push(item); return; }
      case OP.APPENDS: { const items = this.popMark(); const list = this.list(this.top()); for (const item of items) list.push(item); return; }
      case OP.EMPTY_DICT: this.push(new Map()); return;
      case OP.DICT: this.push(this.setItems(new Map(), this.popMark())); return;
      case OP.SETITEM: { const [key, value] = this.popN(2); this.dict(this.top()).set(key, value); return; }
      case OP.SETITEMS: { const items = this.popMark(); this.setItems(this.dict(this.top()), items); return; }
      case OP.BINPUT: this.memo.set(this.readUint8(), this.top()); return;
      case OP.LONG_BINPUT: this.memo.set(this.readLength(4), this.top()); return;
      case OP.MEMOIZE: this.memo.set(this.memo.size, this.top()); return;
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

  private setItems(dict: Map<unknown, unknown>, items: unknown[]): Map<unknown, unknown> {
    if (items.length % 2 !== 0) throw this.fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
    return dict;
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

  /** An unsigned length of 4 or 8 bytes; never more than what is left of the pickle. */
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
    if (count === 0) return 0;
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
