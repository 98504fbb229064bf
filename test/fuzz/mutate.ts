/**
 * Seeded randomness and the mutations the fuzzer applies to valid files: truncations, bit flips,
 * bytes and integer fields set to boundary values, chunks deleted, duplicated or inserted. Every
 * case is reproducible from its seed.
 */

/** A small, fast, seeded PRNG (mulberry32): the same seed always gives the same cases. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** Mostly small numbers, sometimes large: how many bits to flip, how long a chunk to cut. */
  small(max: number): number {
    return 1 + Math.min(max - 1, Math.floor(-Math.log(1 - this.next()) * 3));
  }
}

/** Integer values that break length, count and offset fields. */
const BOUNDARIES = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One mutation: what it did (for the failure report) and the bytes it made. */
export interface Mutation {
  description: string;
  bytes: Uint8Array;
}

/** A position, biased to the start and the end of the file, where headers and directories live. */
function position(random: Random, length: number): number {
  const roll = random.next();
  if (roll < 0.35) return random.below(Math.min(length, 256));
  if (roll < 0.6) return Math.max(0, length - 1 - random.below(Math.min(length, 512)));
  return random.below(length);
}

type Mutator = (random: Random, input: Uint8Array) => Mutation;

const MUTATORS: readonly Mutator[] = [
  function truncate(random, input) {
    const length = random.next() < 0.5 ? position(random, input.length) : random.below(input.length);
    return { description: `truncated to ${length} bytes`, bytes: input.slice(0, length) };
  },
  function flipBits(random, input) {
    const bytes = input.slice();
    const flips: string[] = [];
    for (let n = random.small(8); n > 0; n--) {
      const at = position(random, bytes.length);
      const bit = random.below(8);
      bytes[at] ^= 1 << bit;
      flips.push(`${at}.${bit}`);
    }
    return { description: `bits flipped at ${flips.join(", ")}`, bytes };
  },
  function setByte(random, input) {
    const bytes = input.slice();
    const at = position(random, bytes.length);
    const value = random.pick([0, 0xff, 0x7f, 0x80, random.below(256)]);
    bytes[at] = value;
    return { description: `byte ${at} set to ${value}`, bytes };
  },
  function setField(random, input) {
    const bytes = input.slice();
    const width = random.pick([2, 4, 8]);
    const at = Math.min(position(random, bytes.length), Math.max(0, bytes.length - width));
    const value = random.next() < 0.8 ? random.pick(BOUNDARIES) : random.below(2 ** 32);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (at + width > bytes.length) return { description: "too short for a field", bytes };
    if (width === 2) view.setUint16(at, value & 0xffff, true);
    else if (width === 4) view.setUint32(at, value >>> 0, true);
    else view.setBigUint64(at, BigInt(value) * (random.next() < 0.2 ? 2n ** 32n : 1n), true);
    return { description: `${8 * width}-bit field at ${at} set to ${value}`, bytes };
  },
  function deleteChunk(random, input) {
    const at = position(random, input.length);
    const length = Math.min(input.length - at, random.small(64) * random.pick([1, 1, 4, 64]));
    return { description: `${length} bytes deleted at ${at}`, bytes: concat(input.subarray(0, at), input.subarray(at + length)) };
  },
  function duplicateChunk(random, input) {
    const at = position(random, input.length);
    const length = Math.min(input.length - at, random.small(64) * random.pick([1, 4, 64]));
    return { description: `${length} bytes at ${at} repeated`, bytes: concat(input.subarray(0, at + length), input.subarray(at)) };
  },
  function insertBytes(random, input) {
    const at = position(random, input.length);
    const inserted = Uint8Array.from({ length: random.small(32) }, () => random.pick([0, 0xff, random.below(256)]));
    return { description: `${inserted.length} bytes inserted at ${at}`, bytes: concat(input.subarray(0, at), inserted, input.subarray(at)) };
  },
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** One random mutation of `input` (a non-empty file). */
export function mutate(random: Random, input: Uint8Array): Mutation {
  return random.pick(MUTATORS)(random, input);
}
