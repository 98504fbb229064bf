/**
 * What the fuzzer attacks: each target is a reader, a corpus of valid files for it (written by
 * NumPy, torch-like layouts, Python's zipfile, sharp, our writers), and how to judge what the
 * reader returns for a damaged file. A reader must either return the right data or throw an
 * EndosynthError; "right" depends on what the format protects:
 * - `exact` (zip-based .pth, every member CRC-checked): the same state dict as the original;
 * - `subset` (zip archives, npz): only members of the original, each with its original content
 *   (a damaged name may hide a member, never change one);
 * - `consistent` (npy, safetensors, ONNX metadata, images: nothing protects their data): a
 *   well-formed result, every array's data matching its shape and dtype.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { readStateDictFromBytes } from "../../lib/checkpoint/state_dict.js";
import { readImage } from "../../lib/io/image.js";
import { encodeNpy, parseNpy } from "../../lib/io/npy.js";
import { readNpz, writeNpz } from "../../lib/io/npz.js";
import { openZip, readZipEntry } from "../../lib/io/zip_reader.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { type NdArray, ndarray, validateNdArray } from "../../lib/ndarray/ndarray.js";
import { Graph } from "../../lib/onnx/graph.js";
import { readOnnxMetadata } from "../../lib/onnx/metadata.js";
import { writeOnnx } from "../../lib/onnx/writer.js";
import { handMadeZipBytes } from "../io/helpers.js";
import { writePth, type PthTensor, type PthValue } from "../support/pth_writer.js";
import type { Random } from "./mutate.js";

/** What a reader returned, reduced to what can be compared. */
export type Digest = unknown;

/** How a target's results are judged against the original's. */
export type Integrity = "exact" | "subset" | "consistent";

export interface FuzzTarget {
  readonly name: string;
  readonly integrity: Integrity;
  /** Valid files to mutate, built once. */
  corpus(): Promise<Uint8Array[]>;
  /** Reads a file the way users do, reduced to a digest; throws what the reader throws. */
  read(bytes: Uint8Array): Digest | Promise<Digest>;
  /** A random file from scratch (random headers and sizes), for formats where that finds more than mutation. */
  generate?(random: Random): Uint8Array;
  /** Releases what `read` holds (temporary files). */
  close?(): void;
}

function arrayDigest(array: NdArray): string {
  validateNdArray(array, "result");
  const { data } = array;
  const hash = crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return `${array.dtype}[${array.shape.join(",")}]#${hash.toString(16)}`;
}

// ---------------------------------------------------------------- corpora

function smallArrays(): Record<string, NdArray> {
  return {
    rgb: ndarray(Uint8Array.from({ length: 5 * 7 * 3 }, (_, i) => (i * 37) % 256), [5, 7, 3]),
    depth: ndarray(Float32Array.from({ length: 35 }, (_, i) => 0.02 + i / 256), [5, 7], "float16"),
    f64: ndarray(Float64Array.from([Math.PI, -1e300, 0]), [3]),
    i64: ndarray(BigInt64Array.from([-(2n ** 63n), 7n]), [2, 1]),
    flags: ndarray(Uint8Array.from([1, 0, 1]), [3], "bool"),
    scalar: ndarray(Int16Array.from([-7]), []),
  };
}

function npyFile(array: NdArray): Uint8Array {
  return Uint8Array.from(Buffer.concat(encodeNpy(array)));
}

/** An .npy file with a header written by hand (format `major`.0). */
function handMadeNpy(dict: string, data: Uint8Array, major = 1): Uint8Array {
  const preamble = major === 1 ? 10 : 12;
  const header = Buffer.from(`${dict}\n`, major === 3 ? "utf8" : "latin1");
  const start = Buffer.alloc(preamble);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(start);
  if (major === 1) start.writeUInt16LE(header.length, 8);
  else start.writeUInt32LE(header.length, 8);
  return Uint8Array.from(Buffer.concat([start, header, data]));
}

function temporaryFolder(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "endosynth-fuzz-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Files written by our own writers into a temporary folder, read back as bytes. */
async function written(write: (folder: string) => Promise<string[]> | string[]): Promise<Uint8Array[]> {
  const folder = temporaryFolder();
  try {
    const paths = await write(folder.path);
    return paths.map((path) => Uint8Array.from(readFileSync(path)));
  } finally {
    folder.remove();
  }
}

const testData = (name: string) => join(import.meta.dirname, "..", "io", "data", name);

// ---------------------------------------------------------------- random headers

const DESCRS = ["<f4", "<f2", "|u1", "<i8", ">f8", "=i2", "|b1", "<c8", "|O", "<U3", "f4", "<f16", "", "<u2", ">u4"];

function randomShape(random: Random): string {
  const rank = random.below(5);
  const dims = Array.from({ length: rank }, () =>
    random.pick(["0", "1", "2", "3", "7", "4.0", "-1", "99999999999", "2**31", "1e3", "3L", String(random.below(64))]),
  );
  return `(${dims.join(", ")}${rank === 1 ? "," : ""})`;
}

function randomNpy(random: Random): Uint8Array {
  const parts = [
    `'descr': ${random.pick([`'${random.pick(DESCRS)}'`, "[('a', '<i4')]", "None", "3"])}`,
    `'fortran_order': ${random.pick(["False", "True", "0", "'no'"])}`,
    `'shape': ${random.next() < 0.9 ? randomShape(random) : random.pick(["[3]", "None", "(((((1,),),),),)", "()"])}`,
  ];
  if (random.next() < 0.1) parts.push("'extra': 1");
  const dict = `{${(random.next() < 0.2 ? parts.reverse() : parts).join(", ")}, }${" ".repeat(random.below(80))}`;
  const data = new Uint8Array(random.pick([0, 1, 4, 12, 24, 96, random.below(512)]));
  return handMadeNpy(dict, data, random.pick([1, 1, 1, 2, 3]));
}

const SAFETENSORS_DTYPES = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64", "C64", "F8_E4M3", ""];

function randomSafetensors(random: Random): Uint8Array {
  const tensors: string[] = [];
  let offset = 0;
  for (let n = random.below(4); n > 0; n--) {
    const shape = Array.from({ length: random.below(3) }, () => random.pick(["0", "1", "2", "3", "4.0", "-1", "1e2", "4294967296"]));
    const length = random.pick([0, 2, 4, 8, 12, 16, random.below(64)]);
    const begin = random.next() < 0.8 ? offset : random.below(64);
    tensors.push(`"t${n}":{"dtype":"${random.pick(SAFETENSORS_DTYPES)}","shape":[${shape.join(",")}],"data_offsets":[${begin},${begin + length}]}`);
    offset = begin + length;
  }
  if (random.next() < 0.3) tensors.push(`"__metadata__":${random.pick(['{"a":"b"}', '{"a":1}', "[]", '"x"'])}`);
  const header = Buffer.from(`{${tensors.join(",")}}${" ".repeat(random.below(8))}`);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Uint8Array.from(Buffer.concat([length, header, new Uint8Array(offset + random.below(4))]));
}

/** A safetensors file of the given tensors, laid out as the reference writer does. */
function safetensorsFile(tensors: Record<string, NdArray>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const names: Record<string, string> = { float32: "F32", uint8: "U8", int64: "I64", float64: "F64", bool: "BOOL", int16: "I16" };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [key, array] of Object.entries(tensors)) {
    const { data } = array;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[key] = { dtype: names[array.dtype], shape: array.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Uint8Array.from(Buffer.concat([length, json, ...parts]));
}

// ---------------------------------------------------------------- targets

const npy: FuzzTarget = {
  name: "npy",
  integrity: "consistent",
  async corpus() {
    const arrays = Object.values(smallArrays()).map(npyFile);
    const fortran = handMadeNpy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", new Uint8Array(new Int32Array([1, 2, 3, 4, 5, 6]).buffer));
    const big = handMadeNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(16).fill(0x40), 2);
    const utf8 = handMadeNpy("{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(6).fill(1), 3);
    return [...arrays, fortran, big, utf8];
  },
  read: (bytes) => arrayDigest(parseNpy(bytes, { file: "fuzz.npy" })),
  generate: randomNpy,
};

const npz: FuzzTarget = {
  name: "npz",
  integrity: "subset",
  async corpus() {
    const ours = await written((folder) => {
      const stored = join(folder, "stored.npz");
      const compressed = join(folder, "compressed.npz");
      writeNpz(stored, smallArrays());
      writeNpz(compressed, smallArrays(), { compress: true });
      return [stored, compressed];
    });
    const numpy = ["savez_odd.npz", "savez_compressed_odd.npz", "savez_streamed.npz", "savez_compressed_streamed.npz"].map((name) =>
      Uint8Array.from(readFileSync(testData(name))),
    );
    const zip64 = handMadeZipBytes(Object.entries(smallArrays()).map(([key, array]) => ({ name: `${key}.npy`, data: npyFile(array), deflate: key === "depth" })), { zip64: true });
    return [...ours, ...numpy, Uint8Array.from(zip64)];
  },
  // A Buffer, as fs.readFileSync gives: its slice() is a view, which once made odd offsets throw.
  read: (bytes) => Object.values(readNpz(Buffer.from(bytes))).map(arrayDigest).sort(),
};

/** The npz target through a file on disk: the reader's other path (a descriptor, member by member). */
function npzFileTarget(): FuzzTarget {
  let folder: { path: string; remove(): void } | undefined;
  return {
    name: "npz-file",
    integrity: "subset",
    corpus: npz.corpus,
    read(bytes) {
      folder ??= temporaryFolder();
      const path = join(folder.path, "case.npz");
      writeFileSync(path, bytes);
      return Object.values(readNpz(path)).map(arrayDigest).sort();
    },
    close() {
      folder?.remove();
      folder = undefined;
    },
  };
}

const zip: FuzzTarget = {
  name: "zip",
  integrity: "subset",
  async corpus() {
    const python = Uint8Array.from(readFileSync(testData("zipfile_force_zip64.zip")));
    const ours = await written((folder) => {
      const path = join(folder, "ours.zip");
      const writer = new ZipWriter(path);
      writer.add("aligned", new Uint8Array(100).fill(3), { align: 64 });
      writer.add("deflated", Buffer.from("endosynth ".repeat(50)), { compress: true });
      writer.add("empty", new Uint8Array(0));
      writer.finish();
      return [path];
    });
    const many = handMadeZipBytes(Array.from({ length: 40 }, (_, i) => ({ name: `m${i}`, data: Uint8Array.of(i, i + 1), deflate: i % 3 === 0 })));
    return [python, ...ours, Uint8Array.from(many)];
  },
  read(bytes) {
    const archive = openZip(bytes, "fuzz.zip");
    return [...archive.entries.keys()].map((name) => crc32(readZipEntry(archive, name)).toString(16)).sort();
  },
};

function checkpointDigest(bytes: Uint8Array): Digest {
  const { stateDict, info } = readStateDictFromBytes(bytes, { file: "fuzz.pth" });
  return { tensors: [...stateDict].map(([key, array]) => `${key}=${arrayDigest(array)}`), wrapper: info.wrapper, dropped: info.dropped };
}

const pth: FuzzTarget = {
  name: "pth",
  integrity: "exact",
  async corpus() {
    const storage = ndarray(Float32Array.from({ length: 12 }, (_, i) => i / 3), [3, 4]);
    const halves = ndarray(Float32Array.from([0.5, -2, 1024]), [3], "float16");
    const tensors = new Map<string, PthTensor>([
      ["conv.weight", storage],
      ["conv.weight_t", { storage, shape: [4, 3], stride: [1, 4] }],
      ["half", halves],
      ["steps", ndarray(BigInt64Array.from([3n]), [])],
      ["row", { storage, shape: [2, 4], stride: [0, 1], offset: 4 }],
    ]);
    const extra = new Map<string, PthValue>([["height", 256], ["use_stereo", false], ["lr", 0.5]]);
    return written((folder) => {
      const plain = join(folder, "plain.pth");
      const wrapped = join(folder, "wrapped.pth");
      const big = join(folder, "big.pth");
      writePth(plain, tensors, { extra });
      writePth(wrapped, tensors, { wrapIn: "model_state_dict", extra: new Map<string, PthValue>([["epoch", 3], ["optimizer", new Map([["state", [1, 2]]])]]) });
      writePth(big, tensors, { byteOrder: "big" });
      return [plain, wrapped, big];
    });
  },
  read: (bytes) => checkpointDigest(Buffer.from(bytes)),
};

const safetensors: FuzzTarget = {
  name: "safetensors",
  integrity: "consistent",
  async corpus() {
    const { rgb, f64, i64, flags } = smallArrays();
    return [safetensorsFile({ "module.rgb": rgb, f64, i64, flags }), safetensorsFile({ w: ndarray(Float32Array.from([1, 2]), [2]) })];
  },
  read: checkpointDigest,
  generate: randomSafetensors,
};

function onnxTarget(): FuzzTarget {
  let folder: { path: string; remove(): void } | undefined;
  return {
    name: "onnx-metadata",
    integrity: "consistent",
    async corpus() {
      return written(async (path) => {
        const graph = new Graph("fuzz");
        const x = graph.input("x", "float32", [4]);
        graph.output(graph.add(x, graph.initializer(ndarray(Float32Array.from([1, 2, 3, 4]), [4]), "w")), "y", [4]);
        const model = join(path, "model.onnx");
        await writeOnnx(graph, model, { externalDataThreshold: false, metadata: { model: "dav1", precision: "fp32", note: "ü" } });
        return [model];
      });
    },
    async read(bytes) {
      folder ??= temporaryFolder();
      const path = join(folder.path, "case.onnx");
      writeFileSync(path, bytes);
      const info = await readOnnxMetadata(path);
      if (typeof info.metadata !== "object" || !Object.values(info.metadata).every((value) => typeof value === "string")) throw new Error("metadata values must be strings");
      return info;
    },
    close() {
      folder?.remove();
      folder = undefined;
    },
  };
}

const images: FuzzTarget = {
  name: "png-jpeg",
  integrity: "consistent",
  async corpus() {
    const raw = Buffer.from(Uint8Array.from({ length: 16 * 12 * 3 }, (_, i) => (i * 29) % 256));
    const image = () => sharp(raw, { raw: { width: 16, height: 12, channels: 3 } });
    return Promise.all([
      image().png().toBuffer(),
      image().png({ palette: true }).toBuffer(),
      image().jpeg({ quality: 80 }).toBuffer(),
      image().withMetadata({ orientation: 6 }).jpeg().toBuffer(),
    ]).then((files) => files.map((file) => Uint8Array.from(file)));
  },
  async read(bytes) {
    const image = await readImage(bytes);
    const [height, width, channels] = image.shape;
    if (channels !== 3 || height * width * 3 !== image.data.length || image.dtype !== "uint8") throw new Error(`malformed image ${image.shape}`);
    return arrayDigest(image);
  },
};

/**
 * A target for what an archive member holds, past the archive's CRC: the mutated member is packed
 * into a valid archive (fresh CRC) beside the other members of its original, so the member's own
 * parser (the unpickler, the .npy header parser inside an npz) meets the damage.
 */
function memberTarget(name: string, integrity: Integrity, archives: () => Promise<Uint8Array[]>, member: RegExp, read: (archive: Uint8Array) => Digest): FuzzTarget {
  let others: { name: string; data: Uint8Array }[] = [];
  let memberName = "";
  return {
    name,
    integrity,
    async corpus() {
      const members: Uint8Array[] = [];
      for (const bytes of await archives()) {
        const archive = openZip(bytes);
        const names = [...archive.entries.keys()];
        memberName = names.find((entry) => member.test(entry))!;
        // The other members of the last archive: every corpus archive here holds the same ones.
        others = names.filter((entry) => entry !== memberName).map((entry) => ({ name: entry, data: readZipEntry(archive, entry) }));
        members.push(readZipEntry(archive, memberName).slice());
      }
      return members;
    },
    read: (bytes) => read(Uint8Array.from(handMadeZipBytes([{ name: memberName, data: bytes }, ...others]))),
  };
}

const pthFiles = async () => (await pth.corpus()).slice(0, 2); // the little-endian ones, same storages

/** Every target, in the order the suite runs them. */
export function fuzzTargets(): FuzzTarget[] {
  return [
    npy,
    npz,
    npzFileTarget(),
    zip,
    pth,
    memberTarget("pth-pickle", "consistent", pthFiles, /\/data\.pkl$/, checkpointDigest),
    memberTarget("npz-member", "consistent", async () => [Uint8Array.from(readFileSync(testData("savez_odd.npz")))], /^f8\.npy$/, (bytes) =>
      Object.values(readNpz(bytes)).map(arrayDigest),
    ),
    safetensors,
    onnxTarget(),
    images,
  ];
}
