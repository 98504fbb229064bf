/**
 * A minimal pickle protocol 2 emitter, the counterpart of {@link unpickle}: just the opcodes
 * `torch.save` itself emits for a state dict (see `writePth`), so Python's `pickle` and
 * torch read what it writes.
 * @module
 */
import { OP } from "../../lib/checkpoint/pickle.js";

const utf8 = new TextEncoder();

/** Appends opcodes to a growing buffer; globals are memoised (written once, then recalled). */
export class Pickler {
  private buffer = new Uint8Array(4096);
  private view = new DataView(this.buffer.buffer);
  private length = 0;
  private readonly memo = new Map<string, number>();

  constructor() {
    this.opcode(OP.PROTO);
    this.byte(2);
  }

  /** `module.name` as a global, e.g. `global("collections", "OrderedDict")`. */
  global(module: string, name: string): this {
    const dotted = `${module}.${name}`;
    const index = this.memo.get(dotted);
    if (index !== undefined) return this.get(index);
    this.opcode(OP.GLOBAL);
    this.raw(utf8.encode(`${module}\n${name}\n`));
    return this.put(dotted);
  }

  /** Starts a group of items (for {@link Pickler.tuple}). */
  mark(): this {
    return this.opcode(OP.MARK);
  }

  /** Pops to the last mark and pushes the items as a tuple. */
  tuple(): this {
    return this.opcode(OP.TUPLE);
  }

  /** Pushes `()`. */
  emptyTuple(): this {
    return this.opcode(OP.EMPTY_TUPLE);
  }

  /** A tuple of integers, e.g. a shape. */
  intTuple(values: readonly number[]): this {
    this.mark();
    for (const value of values) this.int(value);
    return this.tuple();
  }

  /** Pushes `[]`. */
  emptyList(): this {
    return this.opcode(OP.EMPTY_LIST);
  }

  /** Appends the top of the stack to the list under it. */
  append(): this {
    return this.opcode(OP.APPEND);
  }

  /** Pushes `{}`. */
  emptyDict(): this {
    return this.opcode(OP.EMPTY_DICT);
  }

  /** Sets key (second from top) to value (top) in the dict under them. */
  setItem(): this {
    return this.opcode(OP.SETITEM);
  }

  /** Calls the global under the argument tuple on top. */
  reduce(): this {
    return this.opcode(OP.REDUCE);
  }

  /** Replaces the tuple on top by what the loader's persistent_load makes of it. */
  persistentId(): this {
    return this.opcode(OP.BINPERSID);
  }

  /** Pushes `None`. */
  none(): this {
    return this.opcode(OP.NONE);
  }

  /** Pushes `True` or `False`. */
  bool(value: boolean): this {
    return this.opcode(value ? OP.NEWTRUE : OP.NEWFALSE);
  }

  /** An integer, in the shortest form Python's pickler would use. */
  int(value: number | bigint): this {
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 0x100) {
      this.opcode(OP.BININT1);
      return this.byte(value);
    }
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 0x10000) {
      this.opcode(OP.BININT2);
      this.reserve(2);
      this.view.setUint16(this.length, value, true);
      this.length += 2;
      return this;
    }
    if (typeof value === "number" && Number.isInteger(value) && value >= -0x80000000 && value < 0x80000000) {
      this.opcode(OP.BININT);
      this.reserve(4);
      this.view.setInt32(this.length, value, true);
      this.length += 4;
      return this;
    }
    return this.long(BigInt(value));
  }

  /** Pushes a float (a double, as Python's). */
  float(value: number): this {
    this.opcode(OP.BINFLOAT);
    this.reserve(8);
    this.view.setFloat64(this.length, value, false);
    this.length += 8;
    return this;
  }

  /** Pushes a str (UTF-8). */
  string(value: string): this {
    const bytes = utf8.encode(value);
    this.opcode(OP.BINUNICODE);
    this.reserve(4);
    this.view.setUint32(this.length, bytes.length, true);
    this.length += 4;
    return this.raw(bytes);
  }

  /** Ends the pickle and returns its bytes. */
  finish(): Uint8Array {
    this.opcode(OP.STOP);
    return this.buffer.subarray(0, this.length);
  }

  /** LONG1: little-endian two's complement in as few bytes as keep the sign. */
  private long(value: bigint): this {
    const digits: number[] = [];
    let rest = value;
    do {
      digits.push(Number(rest & 0xffn));
      rest >>= 8n;
    } while (!(rest === 0n && (digits[digits.length - 1] & 0x80) === 0) && !(rest === -1n && digits[digits.length - 1] & 0x80));
    this.opcode(OP.LONG1);
    this.byte(digits.length);
    return this.raw(Uint8Array.from(digits));
  }

  /** Memoises the value on top of the stack (BINPUT), as Python's pickler does for each object; returns its index. */
  remember(): number {
    const index = this.memo.size;
    this.put(`#${index}`);
    return index;
  }

  /** Pushes a memoised value again (BINGET): how a pickle refers to an object it already holds. */
  recall(index: number): this {
    return this.get(index);
  }

  private put(name: string): this {
    const index = this.memo.size;
    this.memo.set(name, index);
    if (index < 0x100) return this.opcode(OP.BINPUT).byte(index);
    this.opcode(OP.LONG_BINPUT);
    this.reserve(4);
    this.view.setUint32(this.length, index, true);
    this.length += 4;
    return this;
  }

  private get(index: number): this {
    if (index < 0x100) return this.opcode(OP.BINGET).byte(index);
    this.opcode(OP.LONG_BINGET);
    this.reserve(4);
    this.view.setUint32(this.length, index, true);
    this.length += 4;
    return this;
  }

  private opcode(code: number): this {
    return this.byte(code);
  }

  private byte(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  private raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  private reserve(count: number): void {
    if (this.length + count <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + count));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }
}
