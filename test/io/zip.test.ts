import test from "ava";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { openZip, readZipEntry, ZipWriter } from "../../lib/io/zip.js";
import { fixture, temporaryDirectory } from "../helpers/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function writeZip(path: string, members: [string, Uint8Array | Uint8Array[], { compress?: boolean; align?: number }?][]): Uint8Array {
  const writer = new ZipWriter(path);
  for (const [name, data, options] of members) writer.add(name, data, options);
  writer.finish();
  return readFileSync(path);
}

function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

test("lists the members of an archive numpy wrote with np.savez, sizes from the central directory", (t) => {
  const file = fixture("utils", "sample_a.npz");
  const archive = openZip(readFileSync(file), file);
  t.deepEqual([...archive.entries.keys()], ["rgb.npy", "depth.npy", "seg.npy"]);
  const rgb = archive.entries.get("rgb.npy")!;
  t.is(rgb.method, 0);
  t.is(rgb.size, 1080 * 1920 * 3 + 128);
  t.is(rgb.compressedSize, rgb.size);
});

test("stored members are zero-copy views of the archive bytes", (t) => {
  const file = fixture("utils", "sample_a.npz");
  const bytes = readFileSync(file);
  const archive = openZip(bytes, file);
  const seg = readZipEntry(archive, "seg.npy");
  t.is(seg.buffer, bytes.buffer);
  t.is(seg.byteOffset, bytes.byteOffset + archive.entries.get("seg.npy")!.dataOffset);
  t.deepEqual([...seg.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
});

test("inflates the members np.savez_compressed wrote and checks their CRC", (t) => {
  const file = fixture("utils", "sample_b.npz");
  const archive = openZip(readFileSync(file), file);
  const depth = archive.entries.get("depth.npy")!;
  t.is(depth.method, 8);
  const data = readZipEntry(archive, "depth.npy");
  t.is(data.length, 1080 * 1920 * 2 + 128);
  t.is(crc32(data), depth.crc32);
});

test("reads a PyTorch checkpoint archive, whose stored tensors torch.save aligned to 64 bytes", (t) => {
  const file = fixture("dav1", "tiny.pth");
  const archive = openZip(readFileSync(file), file);
  t.true(archive.entries.has("tiny/data.pkl"));
  const tensors = [...archive.entries.values()].filter((entry) => /\/data\/\d+$/.test(entry.name));
  t.true(tensors.length > 100);
  t.true(tensors.every((entry) => entry.dataOffset % 64 === 0 && entry.method === 0));
  const pickle = readZipEntry(archive, "tiny/data.pkl", { verifyCrc: true });
  t.is(pickle[0], 0x80); // pickle PROTO opcode
});

test("round-trips stored and deflated members, several parts each, with the CRC the format expects", (t) => {
  const dir = tempDir(t);
  const first = bytesOf("hello ");
  const second = new Uint8Array(100_000).map((_, i) => (i * 7) % 251);
  const bytes = writeZip(join(dir, "a.zip"), [
    ["stored.bin", [first, second]],
    ["deflated.bin", [first, second], { compress: true }],
    ["empty", new Uint8Array(0)],
    ["naïve/ü.txt", bytesOf("utf-8 name")],
  ]);
  const archive = openZip(bytes);
  const expected = Buffer.concat([first, second]);
  for (const name of ["stored.bin", "deflated.bin"]) {
    const data = readZipEntry(archive, name, { verifyCrc: true });
    t.deepEqual(Buffer.from(data), expected, name);
    t.is(archive.entries.get(name)!.crc32, crc32(expected));
  }
  t.true(archive.entries.get("deflated.bin")!.compressedSize < expected.length);
  t.is(readZipEntry(archive, "empty").length, 0);
  t.is(Buffer.from(readZipEntry(archive, "naïve/ü.txt")).toString(), "utf-8 name");
});

test("align pads local headers so stored data starts at the requested multiple", (t) => {
  const dir = tempDir(t);
  const members: [string, Uint8Array, { align: number }][] = [];
  for (let i = 0; i < 70; i++) members.push([`m${"x".repeat(i)}`, new Uint8Array(i * 13 + 1).fill(i), { align: 64 }]);
  members.push(["page", new Uint8Array(10).fill(9), { align: 4096 }]);
  const archive = openZip(writeZip(join(dir, "aligned.zip"), members));
  for (const [name, data, { align }] of members) {
    const entry = archive.entries.get(name)!;
    t.is(entry.dataOffset % align, 0, name);
    t.deepEqual(Buffer.from(readZipEntry(archive, name, { verifyCrc: true })), Buffer.from(data));
  }
});

test("writes to a file descriptor the caller owns, from its current position", (t) => {
  const path = join(tempDir(t), "fd.zip");
  const fd = openSync(path, "w");
  try {
    const writer = new ZipWriter(fd, "fd.zip");
    writer.add("a", bytesOf("alpha"));
    writer.finish();
  } finally {
    closeSync(fd);
  }
  t.is(Buffer.from(readZipEntry(openZip(readFileSync(path)), "a")).toString(), "alpha");
});

test("over 65534 members the writer adds a zip64 end record and the reader uses it", (t) => {
  const path = join(tempDir(t), "many.zip");
  const writer = new ZipWriter(path);
  const count = 70_000;
  for (let i = 0; i < count; i++) writer.add(String(i), Uint8Array.of(i & 0xff));
  writer.finish();
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = bytes.length - 22;
  t.is(view.getUint16(eocd + 10, true), 0xffff);
  t.is(view.getUint32(eocd - 20, true), 0x07064b50); // zip64 locator
  const archive = openZip(bytes);
  t.is(archive.entries.size, count);
  t.deepEqual([...readZipEntry(archive, "69999")], [69999 & 0xff]);
});

/**
 * Builds, by hand, a one-member archive whose central directory saturates size, compressed size
 * and local offset and carries them in a zip64 extra field (as writers do past 4 GiB), with a
 * zip64 end record. Independent of ZipWriter so the reader is checked against the specification.
 */
function handMadeZip64(name: string, content: Uint8Array): Uint8Array {
  const nameBytes = bytesOf(name);
  const local = Buffer.alloc(30 + nameBytes.length);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(45, 4);
  local.writeUInt32LE(crc32(content), 14);
  local.writeUInt32LE(0xffffffff, 18);
  local.writeUInt32LE(0xffffffff, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  local.set(nameBytes, 30);
  const central = Buffer.alloc(46 + nameBytes.length + 28);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(45, 6);
  central.writeUInt32LE(crc32(content), 16);
  central.writeUInt32LE(0xffffffff, 20);
  central.writeUInt32LE(0xffffffff, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  central.writeUInt16LE(28, 30);
  central.writeUInt32LE(0xffffffff, 42);
  central.set(nameBytes, 46);
  const extra = 46 + nameBytes.length;
  central.writeUInt16LE(0x0001, extra);
  central.writeUInt16LE(24, extra + 2);
  central.writeBigUInt64LE(BigInt(content.length), extra + 4);
  central.writeBigUInt64LE(BigInt(content.length), extra + 12);
  central.writeBigUInt64LE(0n, extra + 20);
  const directoryOffset = local.length + content.length;
  const end = Buffer.alloc(56 + 20 + 22);
  end.writeUInt32LE(0x06064b50, 0);
  end.writeBigUInt64LE(44n, 4);
  end.writeBigUInt64LE(1n, 24);
  end.writeBigUInt64LE(1n, 32);
  end.writeBigUInt64LE(BigInt(central.length), 40);
  end.writeBigUInt64LE(BigInt(directoryOffset), 48);
  end.writeUInt32LE(0x07064b50, 56);
  end.writeBigUInt64LE(BigInt(directoryOffset + central.length), 64);
  end.writeUInt32LE(1, 72);
  end.writeUInt32LE(0x06054b50, 76);
  end.writeUInt16LE(0xffff, 86);
  end.writeUInt32LE(0xffffffff, 88);
  end.writeUInt32LE(0xffffffff, 92);
  return Buffer.concat([local, content, central, end]);
}

test("reads sizes and offsets from zip64 extra fields and the zip64 end record", (t) => {
  const content = bytesOf("zip64 content");
  const archive = openZip(handMadeZip64("big.bin", content));
  const entry = archive.entries.get("big.bin")!;
  t.is(entry.size, content.length);
  t.is(entry.compressedSize, content.length);
  t.is(entry.dataOffset, 30 + "big.bin".length);
  t.deepEqual(Buffer.from(readZipEntry(archive, "big.bin", { verifyCrc: true })), Buffer.from(content));
});

test("archives over 4 GiB get zip64 sizes and offsets (checked by parsing the file's tail)", (t) => {
  const path = join(tempDir(t), "huge.zip");
  const chunk = new Uint8Array(64 << 20).fill(0xab);
  const parts = new Array<Uint8Array>(65).fill(chunk); // 4160 MiB > 4 GiB
  const total = chunk.length * parts.length;
  const writer = new ZipWriter(path);
  writer.add("huge.bin", parts);
  writer.add("after.bin", bytesOf("after"));
  writer.finish();
  const fileSize = statSync(path).size;
  const tail = Buffer.alloc(4096);
  const fd = openSync(path, "r");
  try {
    readSync(fd, tail, 0, tail.length, fileSize - tail.length);
  } finally {
    closeSync(fd);
  }
  const eocd = tail.length - 22;
  t.is(tail.readUInt32LE(eocd), 0x06054b50);
  t.is(tail.readUInt32LE(eocd + 16), 0xffffffff); // directory offset is past 4 GiB
  const locator = eocd - 20;
  t.is(tail.readUInt32LE(locator), 0x07064b50);
  const record = Number(tail.readBigUInt64LE(locator + 8)) - (fileSize - tail.length);
  t.is(tail.readUInt32LE(record), 0x06064b50);
  t.is(tail.readBigUInt64LE(record + 32), 2n);
  const directory = Number(tail.readBigUInt64LE(record + 48)) - (fileSize - tail.length);
  // First central header: huge.bin, both sizes in the zip64 extra; offset 0 fits in 32 bits.
  t.is(tail.readUInt32LE(directory), 0x02014b50);
  t.is(tail.readUInt32LE(directory + 20), 0xffffffff);
  t.is(tail.readUInt32LE(directory + 24), 0xffffffff);
  t.is(tail.readUInt32LE(directory + 42), 0);
  const nameLength = tail.readUInt16LE(directory + 28);
  const extra = directory + 46 + nameLength;
  t.is(tail.readUInt16LE(extra), 0x0001);
  t.is(tail.readUInt16LE(extra + 2), 16);
  t.is(Number(tail.readBigUInt64LE(extra + 4)), total);
  t.is(Number(tail.readBigUInt64LE(extra + 12)), total);
  // Second central header: after.bin, whose local header lies past 4 GiB.
  const second = extra + 4 + 16;
  t.is(tail.readUInt32LE(second), 0x02014b50);
  t.is(tail.readUInt32LE(second + 42), 0xffffffff);
  const secondExtra = second + 46 + tail.readUInt16LE(second + 28);
  t.is(tail.readUInt16LE(secondExtra), 0x0001);
  const localOffset = Number(tail.readBigUInt64LE(secondExtra + 4));
  t.true(localOffset > 2 ** 32);
  t.is(tail.readUInt32LE(localOffset - (fileSize - tail.length)), 0x04034b50);
  rmSync(path);
});

test("a failed or aborted write leaves neither the target nor a temporary file", (t) => {
  const dir = tempDir(t);
  const target = join(dir, "out.zip");
  writeFileSync(target, "previous content");
  const writer = new ZipWriter(target);
  writer.add("a", bytesOf("a"));
  writer.abort();
  t.is(readFileSync(target, "utf8"), "previous content");
  t.deepEqual(readdirSync(dir), ["out.zip"]);
  const error = t.throws(() => writer.add("b", bytesOf("b")), { instanceOf: InputError });
  t.regex(error.message, /already aborted/);

  const fresh = join(dir, "fresh.zip");
  const failing = new ZipWriter(fresh);
  t.throws(() => failing.add("bad", [bytesOf("x"), "not bytes" as unknown as Uint8Array]), { instanceOf: InputError });
  failing.abort();
  t.false(existsSync(fresh));
  t.deepEqual(readdirSync(dir), ["out.zip"]);
});

test("duplicate names and bad options are refused", (t) => {
  const dir = tempDir(t);
  const writer = new ZipWriter(join(dir, "d.zip"));
  writer.add("a", bytesOf("a"));
  const duplicate = t.throws(() => writer.add("a", bytesOf("b")), { instanceOf: InputError });
  t.regex(duplicate.message, /Duplicate zip member "a"/);
  t.throws(() => writer.add("c", bytesOf("c"), { align: 0 }), { instanceOf: InputError, message: /options\.align/ });
  t.throws(() => writer.add("c", bytesOf("c"), { compress: true, align: 64 }), { instanceOf: InputError, message: /stored members only/ });
  t.throws(() => writer.add("c", bytesOf("c"), { level: 9 } as never), { instanceOf: InputError, message: /Unknown option "level"/ });
  writer.abort();
});

test("bytes that are not a zip archive: FileFormatError naming the file", (t) => {
  const error = t.throws(() => openZip(bytesOf("this is not a zip archive at all, just text"), "text.zip"), {
    instanceOf: FileFormatError,
  });
  t.is(error.code, "ERR_ENDOSYNTH_FILE_FORMAT");
  t.is(error.file, "text.zip");
  t.regex(error.message, /^text\.zip: not a zip archive/);
  t.throws(() => openZip(new Uint8Array(3), "tiny.zip"), { instanceOf: FileFormatError, message: /3 bytes, fewer than the 22/ });
});

test("a truncated archive: FileFormatError naming the file", (t) => {
  const file = fixture("utils", "sample_a.npz");
  const bytes = readFileSync(file);
  for (const length of [bytes.length - 1, bytes.length - 100, Math.floor(bytes.length / 2)]) {
    const error = t.throws(() => openZip(bytes.subarray(0, length), file), { instanceOf: FileFormatError });
    t.is(error.file, file);
    t.regex(error.message, /truncated/);
  }
});

test("a central directory pointing past the data: FileFormatError naming the member, expected and actual", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "a.zip"), [["first", bytesOf("first member")], ["second", bytesOf("2")]]));
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  bytes.writeUInt32LE(1000, directory + 20); // compressed size of "first"
  const error = t.throws(() => openZip(bytes, "a.zip"), { instanceOf: FileFormatError });
  t.is(error.key, "first");
  t.regex(error.message, /member first needs 1000 bytes at offset \d+ but only \d+ are there/);
});

test("a corrupted deflated member fails its CRC check, naming file, member, expected and computed CRC", (t) => {
  const dir = tempDir(t);
  // Letters without repeats: every literal has an 8-bit code, so changing one keeps the stream length.
  const content = bytesOf("abcdefghijklmnopqrstuvwxyz");
  const path = join(dir, "c.zip");
  const bytes = Buffer.from(writeZip(path, [["text", content, { compress: true }]]));
  // Rewrite the compressed data as a valid deflate stream of different text of the same length.
  const entry = openZip(bytes).entries.get("text")!;
  const other = deflateRawSync(bytesOf("abcdefghijklmnopqrstuvwxyZ"));
  t.is(other.length, entry.compressedSize);
  bytes.set(other, entry.dataOffset);
  const error = t.throws(() => readZipEntry(openZip(bytes, path), "text"), { instanceOf: FileFormatError });
  t.is(error.key, "text");
  t.regex(error.message, new RegExp(`^${path}: member text is corrupt: CRC-32 expected 0x${crc32(content).toString(16).padStart(8, "0")}, computed 0x`));
});

test("garbage in place of deflated data: FileFormatError saying it does not inflate", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "g.zip"), [["text", bytesOf("x".repeat(1000)), { compress: true }]]));
  const entry = openZip(bytes).entries.get("text")!;
  bytes.fill(0xff, entry.dataOffset, entry.dataOffset + entry.compressedSize);
  t.throws(() => readZipEntry(openZip(bytes, "g.zip"), "text"), { instanceOf: FileFormatError, message: /member text does not inflate/ });
});

test("a flipped byte in a stored member is caught only when verifyCrc is asked for", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "s.zip"), [["data", new Uint8Array(1000).fill(1)]]));
  const entry = openZip(bytes).entries.get("data")!;
  bytes[entry.dataOffset + 500] ^= 0x10;
  const archive = openZip(bytes, "s.zip");
  t.is(readZipEntry(archive, "data")[500], 1 ^ 0x10);
  t.throws(() => readZipEntry(archive, "data", { verifyCrc: true }), { instanceOf: FileFormatError, message: /member data is corrupt: CRC-32/ });
});

test("a wrong uncompressed size in the central directory: FileFormatError with expected and actual", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "z.zip"), [["text", bytesOf("y".repeat(300)), { compress: true }]]));
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  bytes.writeUInt32LE(299, directory + 24);
  t.throws(() => readZipEntry(openZip(bytes, "z.zip"), "text"), {
    instanceOf: FileFormatError,
    message: /member text has the wrong size: expected 299 bytes, found 300/,
  });
});

test("a missing member, an unknown method and an encrypted member are reported by name", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "m.zip"), [["a.npy", bytesOf("a")], ["b.npy", bytesOf("b")]]));
  const missing = t.throws(() => readZipEntry(openZip(bytes, "m.zip"), "c.npy"), { instanceOf: FileFormatError });
  t.is(missing.key, "c.npy");
  t.regex(missing.message, /no member "c\.npy" in the archive \(it has: a\.npy, b\.npy\)/);

  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const lzma = Buffer.from(bytes);
  lzma.writeUInt16LE(14, directory + 10);
  t.throws(() => readZipEntry(openZip(lzma, "m.zip"), "a.npy"), { instanceOf: FileFormatError, message: /compression method 14/ });

  const encrypted = Buffer.from(bytes);
  encrypted.writeUInt16LE(1, directory + 8);
  t.throws(() => openZip(encrypted, "m.zip"), { instanceOf: FileFormatError, message: /member a\.npy is encrypted/ });
});
