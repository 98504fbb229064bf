/**
 * Peak memory on hostile inputs, each read in a child process of its own: a file built to make a
 * reader allocate far more than it holds must be refused with a typed error while the process's
 * peak resident memory grows by less than 100 MB over what it was before the read.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { deflateRawSync } from "node:zlib";
import sharp from "sharp";
import { encodeNpy } from "../../lib/io/npy.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { repoRoot } from "../support/fixtures.js";
import { deflatedWithZeros, handMadeZipBytes, tempDir } from "../io/helpers.js";
import { type PthTensor, writePth } from "../support/pth_writer.js";
import { Random } from "./mutate.js";

const run = promisify(execFile);
const LIMIT_MIB = 100;

interface Probe {
  before: number;
  after: number;
  outcome: string;
}

async function probe(reader: string, path: string): Promise<Probe> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(repoRoot, "test/fuzz/memory_probe.ts"), reader, path], { cwd: repoRoot });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Probe;
}

/** Zip bytes whose first member's method is switched to deflate and whose declared size is `size`. */
function asDeflated(bytes: Buffer, size: number): Buffer {
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  bytes.writeUInt16LE(8, 8);
  bytes.writeUInt16LE(8, directory + 10);
  bytes.writeUInt32LE(size, directory + 24);
  return bytes;
}

const npyHeader = (shape: number[]) => Buffer.concat(encodeNpy(ndarray(new Float32Array(1), [1]))).subarray(0, 128).toString("latin1").replace("(1,)", `(${shape.join(", ")},)`);

/**
 * A real state dict's pickle builds about 12 bytes of objects per byte of pickle (the fixtures':
 * 11.6 to 12.3): the honest size of a pickle is that, not its file size.
 */
const PICKLE_BUILDS_PER_BYTE = 12;

interface HostileCase {
  name: string;
  reader: string;
  build(dir: string): Promise<Uint8Array> | Uint8Array;
  /** What the input honestly needs in memory once read, MiB (default: its size). */
  honestMiB?: (inputMiB: number) => number;
}

const CASES: HostileCase[] = [
  {
    name: "an npz member of 168 declared bytes whose stream inflates to 1 GiB",
    reader: "npz",
    async build() {
      const header = Buffer.concat(encodeNpy(ndarray(new Float32Array(10), [10])));
      return asDeflated(handMadeZipBytes([{ name: "depth.npy", data: await deflatedWithZeros(header, 1 << 30) }]), header.length);
    },
  },
  {
    name: "an npz member declaring 1 GiB (header and archive agree) whose stream ends after 1.1 MB",
    reader: "npz",
    build() {
      // Incompressible data, so the stream is long enough to be able to hold 1 GiB, and has to be inflated to be found short.
      const header = Buffer.from(npyHeader([1 << 28]), "latin1");
      const random = new Random(12);
      const noise = Uint8Array.from({ length: 1_100_000 }, () => random.below(256));
      return asDeflated(handMadeZipBytes([{ name: "depth.npy", data: deflateRawSync(Buffer.concat([header, noise])) }]), 128 + (1 << 30));
    },
  },
  {
    name: "a zip of 20,000 central-directory entries pointing at one 1 GiB deflate kernel",
    reader: "zip",
    async build() {
      const bytes = asDeflated(handMadeZipBytes([{ name: "k", data: await deflatedWithZeros(new Uint8Array(0), 1 << 30) }]), 1 << 30);
      const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
      const entry = bytes.subarray(directory, bytes.length - 22);
      const entries = Buffer.concat(new Array(20_000).fill(entry));
      const end = Buffer.from(bytes.subarray(bytes.length - 22));
      end.writeUInt16LE(20_000, 8);
      end.writeUInt16LE(20_000, 10);
      end.writeUInt32LE(entries.length, 12);
      return Buffer.concat([bytes.subarray(0, directory), entries, end]);
    },
  },
  {
    name: "a 600-byte checkpoint whose expand() view asks for 16 GiB",
    reader: "pth",
    build(dir) {
      const path = join(dir, "expand.pth");
      writePth(path, new Map<string, PthTensor>([["mask", { storage: ndarray(new Float32Array(1), [1]), shape: [1 << 16, 1 << 16], stride: [0, 0] }]]));
      return Uint8Array.from(readFileSync(path));
    },
  },
  {
    name: "a checkpoint viewing one 4 MiB storage 1000 times transposed (4 GB of copies)",
    reader: "pth",
    build(dir) {
      const path = join(dir, "views.pth");
      const storage = ndarray(new Float32Array(1 << 20), [1024, 1024]);
      writePth(path, new Map<string, PthTensor>(Array.from({ length: 1000 }, (_, i) => [`v${i}`, { storage, shape: [1024, 1024], stride: [1, 1024] }])));
      return Uint8Array.from(readFileSync(path));
    },
  },
  {
    name: "a checkpoint whose 8 MB pickle is empty dicts (an unbounded unpickler builds ~1 GB)",
    reader: "pth",
    build(dir) {
      const path = join(dir, "dicts.pth");
      const pickle = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(8 << 20, 0x7d), Buffer.from([0x2e])]);
      writeFileSync(path, handMadeZipBytes([{ name: "d/data.pkl", data: pickle }, { name: "d/version", data: Buffer.from("3\n") }]));
      return Uint8Array.from(readFileSync(path));
    },
    honestMiB: (inputMiB) => PICKLE_BUILDS_PER_BYTE * inputMiB,
  },
  {
    name: "an .npy header claiming (100000, 100000) float64 over 8 bytes of data",
    reader: "npy",
    build() {
      return Buffer.concat([Buffer.from(npyHeader([100_000, 100_000]).replace("<f4", "<f8"), "latin1"), Buffer.alloc(8)]);
    },
  },
  {
    name: "a PNG declaring 16000 x 16000 pixels in 200 bytes (within sharp's own limit)",
    reader: "image",
    async build() {
      const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "black" } }).png().toBuffer();
      png.writeUInt32BE(16_000, 16);
      png.writeUInt32BE(16_000, 20);
      return png;
    },
  },
];

for (const { name, reader, build, honestMiB = (inputMiB: number) => inputMiB } of CASES) {
  test(`memory: ${name} is refused, peak memory < ${LIMIT_MIB} MB above the input`, async (t) => {
    const dir = tempDir(t);
    const path = join(dir, `input.${reader}`);
    writeFileSync(path, await build(dir));
    const { before, after, outcome } = await probe(reader, path);
    const inputMiB = statSync(path).size / 2 ** 20;
    t.log(`${outcome.slice(0, 160)}; input ${inputMiB.toFixed(1)} MiB, peak ${before.toFixed(0)} -> ${after.toFixed(0)} MiB`);
    t.regex(outcome, /^(FileFormatError|CheckpointError): /);
    t.true(after - before < LIMIT_MIB + honestMiB(inputMiB), `peak grew by ${(after - before).toFixed(0)} MiB for ${inputMiB.toFixed(1)} MiB of input`);
  });
}
