import test from "ava";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError } from "../../lib/errors.js";
import { converterVersion, convertCheckpoint } from "../../lib/convert/convert.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { Graph } from "../../lib/onnx/graph.js";
import { readOnnxMetadata } from "../../lib/onnx/metadata.js";
import { ProtoWriter } from "../../lib/onnx/protobuf.js";
import { writeOnnx, type WriteOnnxOptions } from "../../lib/onnx/writer.js";
import { fixture } from "../support/fixtures.js";
import { randomFloats, tempDir } from "./helpers.js";
import { readOnnx } from "./onnx_reader.js";

const FORMAT_ERROR = { instanceOf: FileFormatError, code: "ERR_ENDOSYNTH_FILE_FORMAT" } as const;
const METADATA = { model: "dav2", converter_version: "3", channel_order: "bgr", precision: "fp16" };

/** y = x + w for one weight of `floats` values, written to `dir/name`. */
async function writeModel(dir: string, name: string, floats: number, options: WriteOnnxOptions = {}): Promise<string> {
  const g = new Graph(name);
  const x = g.input("x", "float32", []);
  g.output(g.add(x, g.initializer(ndarray(randomFloats(floats), [floats]), "w")), "y", [floats]);
  const path = join(dir, `${name}.onnx`);
  await writeOnnx(g, path, options);
  return path;
}

/** The bytes protobuf writes for a varint (tests build headers the writer never emits alone). */
function varintBytes(value: number): number[] {
  const bytes: number[] = [];
  for (let rest = value; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) return [...bytes, rest];
    bytes.push((rest % 128) | 128);
  }
}

function encoded(writer: ProtoWriter): Buffer {
  return Buffer.concat(writer.chunks());
}

test("the metadata, producer, IR version and opsets of a model with external data", async (t) => {
  const path = await writeModel(tempDir(t), "external", 4096, { metadata: METADATA, producerVersion: "0.1.0" });
  t.truthy(statSync(`${path}.data`).size >= 4 * 4096, "the weight went to the data file");
  const info = await readOnnxMetadata(path);
  const data = readFileSync(`${path}.data`);
  t.deepEqual(info, {
    metadata: {
      ...METADATA,
      external_data: "external.onnx.data",
      external_data_bytes: String(data.length),
      external_data_sha256: createHash("sha256").update(data).digest("hex"),
    },
    irVersion: 8,
    producerName: "endosynth",
    producerVersion: "0.1.0",
    opsetImports: [{ domain: "", version: 17 }],
  });
  t.deepEqual(info.metadata, readOnnx(path).metadata, "the tests' own full decoder agrees");
});

test("the metadata of a model with its weights embedded (8 MB graph skipped)", async (t) => {
  const path = await writeModel(tempDir(t), "embedded", 2 * 1024 * 1024, { metadata: METADATA, externalDataThreshold: false });
  t.true(statSync(path).size > 8 * 1024 * 1024);
  const info = await readOnnxMetadata(path);
  t.deepEqual(info.metadata, METADATA);
  t.is(info.producerName, "endosynth");
});

test("a 3 GiB model is read without loading it: the graph is skipped by its length", async (t) => {
  // A sparse file: ir_version, producer, a 3 GiB graph of zeros (never written, so it takes no
  // disk), then metadata. Larger than any Buffer Node can read whole, so only skipping works.
  const path = join(tempDir(t), "huge.onnx");
  const graphLength = 3 * 1024 ** 3;
  const head = Buffer.concat([encoded(new ProtoWriter().varint(1, 9).string(2, "pytorch")), Buffer.from([(7 << 3) | 2, ...varintBytes(graphLength)])]);
  const tail = encoded(new ProtoWriter().message(14, new ProtoWriter().string(1, "model").string(2, "dav1")));
  const fd = openSync(path, "w");
  try {
    writeSync(fd, head, 0, head.length, 0);
    writeSync(fd, tail, 0, tail.length, head.length + graphLength);
  } finally {
    closeSync(fd);
  }
  t.is(statSync(path).size, head.length + graphLength + tail.length);
  t.deepEqual(await readOnnxMetadata(path), { metadata: { model: "dav1" }, irVersion: 9, producerName: "pytorch", opsetImports: [] });
});

test("a model converted from the tiny dav1 checkpoint names its model, precision and channel order", async (t) => {
  const output = join(tempDir(t), "dav1.onnx");
  await convertCheckpoint({ model: "dav1", checkpoint: fixture("dav1", "tiny.pth"), output, channelOrder: "bgr" });
  const { metadata, producerName } = await readOnnxMetadata(output);
  t.is(metadata.model, "dav1");
  t.is(metadata.precision, "fp32");
  t.is(metadata.channel_order, "bgr");
  t.is(metadata.converter_version, converterVersion());
  t.regex(metadata.input, /^rgb: uint8/);
  t.regex(metadata.output, /^depth: float32/);
  t.is(producerName, "endosynth");
});

test("a model written without metadata gives an empty record", async (t) => {
  const path = await writeModel(tempDir(t), "bare", 4);
  t.deepEqual((await readOnnxMetadata(path)).metadata, {});
});

test("a model cut inside its graph: field 7 runs past the end of the file", async (t) => {
  const dir = tempDir(t);
  const whole = readFileSync(await writeModel(dir, "whole", 4096, { metadata: METADATA, externalDataThreshold: false }));
  const path = join(dir, "truncated.onnx");
  writeFileSync(path, whole.subarray(0, whole.length / 2));
  const error = await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: /field 7 at byte \d+ runs past the end of the file \(truncated\?\)$/ });
  t.true(error.message.startsWith(`${path}: not an ONNX model: `), error.message);
  t.is(error.file, path);
});

test("a model cut inside its last metadata entry: field 14 runs past the end of the file", async (t) => {
  const dir = tempDir(t);
  const whole = readFileSync(await writeModel(dir, "whole", 4, { metadata: METADATA }));
  const path = join(dir, "truncated.onnx");
  writeFileSync(path, whole.subarray(0, whole.length - 1));
  await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: /field 14 at byte \d+ runs past the end of the file/ });
});

test("a file ending inside a field's length is a truncated varint", async (t) => {
  const path = join(tempDir(t), "cut.onnx");
  writeFileSync(path, Uint8Array.from([0x08, 0x08, 0x3a, 0x80]));
  await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: `${path}: not an ONNX model: truncated varint at byte 3` });
});

test("a PNG is not an ONNX model", async (t) => {
  const png = fixture("utils", "sample_a.sample2png.png");
  const error = await t.throwsAsync(readOnnxMetadata(png), { ...FORMAT_ERROR, message: /not an ONNX model/ });
  t.true(error.message.startsWith(`${png}: `), error.message);
  t.is(error.file, png);
});

test("random bytes are not an ONNX model", async (t) => {
  const path = join(tempDir(t), "random.onnx");
  for (const seed of [1, 2, 3, 4, 5]) {
    writeFileSync(path, Buffer.from(randomFloats(4096, seed).buffer));
    const error = await t.throwsAsync(readOnnxMetadata(path), FORMAT_ERROR, `seed ${seed}`);
    t.true(error.message.startsWith(`${path}: not an ONNX model: `), error.message);
  }
});

test("an empty file, or well-formed protobuf without ir_version or graph, is not an ONNX model", async (t) => {
  const dir = tempDir(t);
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "it has no ir_version (field 1)"],
    ["no-graph", encoded(new ProtoWriter().varint(1, 8).string(2, "x")), "it has no graph (field 7)"],
    ["no-ir", encoded(new ProtoWriter().message(7, new ProtoWriter().string(2, "g"))), "it has no ir_version (field 1)"],
  ];
  for (const [name, bytes, problem] of cases) {
    const path = join(dir, `${name}.onnx`);
    writeFileSync(path, bytes);
    await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: `${path}: not an ONNX model: ${problem}` }, name);
  }
});

test("ModelProto fields with the wrong wire type, repeated metadata keys and non-UTF-8 text are refused", async (t) => {
  const dir = tempDir(t);
  const model = () => new ProtoWriter().varint(1, 8).message(7, new ProtoWriter());
  const entry = (key: string, value: string) => new ProtoWriter().string(1, key).string(2, value);
  const cases: [string, ProtoWriter, RegExp][] = [
    ["metadata-varint", model().varint(14, 3), /field 14 has wire type 0, expected 2$/],
    ["ir-string", new ProtoWriter().string(1, "8").message(7, new ProtoWriter()), /field 1 has wire type 2, expected 0$/],
    ["repeated-key", model().message(14, entry("model", "dav1")).message(14, entry("model", "dav2")), /metadata_props repeats the key "model"$/],
    ["latin1", model().message(14, new ProtoWriter().string(1, "model").bytes(2, Uint8Array.of(0xe9))), /metadata_props value of "model" is not UTF-8$/],
  ];
  for (const [name, writer, message] of cases) {
    const path = join(dir, `${name}.onnx`);
    writeFileSync(path, encoded(writer));
    await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message }, name);
  }
});

test("a missing file is a FileFormatError naming the path", async (t) => {
  const path = join(tempDir(t), "missing.onnx");
  const error = await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: `${path}: cannot read the file: no such file` });
  t.is(error.file, path);
  t.is((error.cause as NodeJS.ErrnoException).code, "ENOENT");
});

test("a folder is a FileFormatError saying so", async (t) => {
  const path = join(tempDir(t), "folder.onnx");
  mkdirSync(path);
  await t.throwsAsync(readOnnxMetadata(path), { ...FORMAT_ERROR, message: `${path}: cannot read the file: it is a folder, not a file` });
});

test("a model of 400,000 small top-level fields (3.6 MB) is read through a window, not field by field", async (t) => {
  // Unknown fields (number 20) are skipped like the graph; each used to cost one positional read.
  const writer = new ProtoWriter().varint(1, 8).message(7, new ProtoWriter().string(2, "g"));
  for (let i = 0; i < 400_000; i++) writer.string(20, "padding");
  writer.message(14, new ProtoWriter().string(1, "model").string(2, "dav1"));
  const path = join(tempDir(t), "many-fields.onnx");
  writeFileSync(path, encoded(writer));
  t.true(statSync(path).size > 3_500_000);
  t.timeout(10_000, "hang guard: reading field by field took 23 s for 3.8 MB");
  const info = await readOnnxMetadata(path);
  t.deepEqual(info.metadata, { model: "dav1" });
  t.is(info.irVersion, 8);
});
