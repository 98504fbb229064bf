import test from "ava";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { openZip, openZipFile, readZipEntry, readZipEntryHead } from "../../lib/io/zip_reader.js";
import { fixture } from "../support/fixtures.js";
import { bytesOf, handMadeZipBytes, tempDir, writeHandMadeZip, writeZip } from "./helpers.js";

const data = (name: string) => join(import.meta.dirname, "data", name);

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

test("reads sizes and offsets from zip64 extra fields and the zip64 end record", (t) => {
  const content = bytesOf("zip64 content");
  const archive = openZip(handMadeZipBytes([{ name: "big.bin", data: content }], { zip64: true }));
  const entry = archive.entries.get("big.bin")!;
  t.is(entry.size, content.length);
  t.is(entry.compressedSize, content.length);
  t.is(entry.dataOffset, 30 + "big.bin".length + 20); // local header, name, zip64 extra
  t.deepEqual(Buffer.from(readZipEntry(archive, "big.bin", { verifyCrc: true })), Buffer.from(content));
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

test("a member reaching into the next one or past the data: FileFormatError naming it, expected and actual", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "a.zip"), [["first", bytesOf("first member")], ["second", bytesOf("2")]]));
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const overlapping = Buffer.from(bytes);
  overlapping.writeUInt32LE(40, directory + 20); // compressed size of "first": reaches into "second"
  const overlap = t.throws(() => openZip(overlapping, "a.zip"), { instanceOf: FileFormatError });
  t.is(overlap.key, "first");
  t.regex(overlap.message, /^a\.zip: corrupt zip: member first \(40 bytes at offset 35\) overlaps member second at offset 47/);
  const second = directory + 46 + "first".length;
  const past = Buffer.from(bytes);
  past.writeUInt32LE(1000, second + 20); // compressed size of "second": past the central directory
  const error = t.throws(() => openZip(past, "a.zip"), { instanceOf: FileFormatError });
  t.is(error.key, "second");
  t.regex(error.message, /member second needs 1000 bytes at offset 83 but only 1 are there/);
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

test("a flipped byte in a stored member fails its CRC check unless verifyCrc is false", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "s.zip"), [["data", new Uint8Array(1000).fill(1)]]));
  const entry = openZip(bytes).entries.get("data")!;
  bytes[entry.dataOffset + 500] ^= 0x10;
  const error = t.throws(() => readZipEntry(openZip(bytes, "s.zip"), "data"), { instanceOf: FileFormatError });
  t.is(error.key, "data");
  t.regex(error.message, /^s\.zip: member data is corrupt: CRC-32 expected 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
  t.is(readZipEntry(openZip(bytes, "s.zip"), "data", { verifyCrc: false })[500], 1 ^ 0x10);
  t.throws(() => readZipEntry(openZip(bytes), "data", { verifyCrc: "yes" as never }), { instanceOf: InputError, message: /options\.verifyCrc/ });
});

test("a deflated member longer or shorter than its declared size: FileFormatError with the sizes", (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(writeZip(join(dir, "z.zip"), [["text", bytesOf("y".repeat(300)), { compress: true }]]));
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const shorter = Buffer.from(bytes);
  shorter.writeUInt32LE(299, directory + 24);
  t.throws(() => readZipEntry(openZip(shorter, "z.zip"), "text"), {
    instanceOf: FileFormatError,
    message: /member text inflates past its declared size of 299 bytes/,
  });
  const longer = Buffer.from(bytes);
  longer.writeUInt32LE(301, directory + 24);
  t.throws(() => readZipEntry(openZip(longer, "z.zip"), "text"), {
    instanceOf: FileFormatError,
    message: /member text has the wrong size: expected 301 bytes, found 300/,
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

for (const name of ["savez_odd.npz", "savez_compressed_odd.npz", "savez_streamed.npz", "savez_compressed_streamed.npz", "zipfile_force_zip64.zip"]) {
  test(`reads every member of ${name} (written by NumPy 2.4 / Python's zipfile), from bytes and from the file`, (t) => {
    const fromBytes = openZip(readFileSync(data(name)), name);
    const fromFile = openZipFile(data(name));
    t.teardown(() => fromFile.close());
    t.true(fromBytes.entries.size >= 3);
    t.deepEqual([...fromFile.entries.keys()], [...fromBytes.entries.keys()]);
    for (const entry of fromBytes.entries.values()) {
      const member = readZipEntry(fromBytes, entry.name);
      t.is(member.length, entry.size);
      t.is(crc32(member), entry.crc32);
      t.deepEqual(Buffer.from(readZipEntry(fromFile, entry.name)), Buffer.from(member));
    }
  });
}

test("NumPy places members at odd offsets: the reader hands them out as they are", (t) => {
  const archive = openZip(readFileSync(data("savez_odd.npz")));
  const offsets = [...archive.entries.values()].map((entry) => entry.dataOffset % 8);
  t.true(offsets.some((offset) => offset % 2 === 1));
});

test("a streamed archive (data descriptors, no CRC or sizes in local headers) reads by its central directory", (t) => {
  const bytes = readFileSync(data("savez_streamed.npz"));
  t.is(bytes.readUInt16LE(6) & 0x8, 0x8); // general-purpose bit 3 on the first local header
  t.is(bytes.readUInt32LE(14), 0); // CRC-32 only in the data descriptor after the data
  t.is(bytes.readUInt32LE(18), 0xffffffff);
  t.is(openZip(bytes).entries.get("rgb.npy")!.size, 233);
});

test("names without the UTF-8 flag are code page 437, as the zip format and Python's zipfile say", (t) => {
  const bytes = handMadeZipBytes([{ name: Uint8Array.from([0x63, 0x61, 0x66, 0x82, 0x2e, 0x74, 0x78, 0x74]), data: bytesOf("cp437") }]);
  t.deepEqual([...openZip(bytes).entries.keys()], ["café.txt"]);
  t.deepEqual([...openZip(handMadeZipBytes([{ name: "naïve ✓", data: bytesOf("utf-8") }])).entries.keys()], ["naïve ✓"]);
});

test("more than 65,535 members with the 16-bit count wrapped and no zip64 record: every member is read", (t) => {
  const members = Array.from({ length: 70_000 }, (_, i) => ({ name: `m${i}`, data: Uint8Array.of(i & 0xff) }));
  const bytes = handMadeZipBytes(members, { wrapCount: true });
  t.is(bytes.readUInt16LE(bytes.length - 22 + 10), 70_000 - 65_536);
  const archive = openZip(bytes);
  t.is(archive.entries.size, 70_000);
  t.deepEqual([...readZipEntry(archive, "m69999")], [69_999 & 0xff]);
});

test("a sparse archive over 4 GiB: zip64 sizes and offsets, a member past 4 GiB read from the file", (t) => {
  const path = join(tempDir(t), "huge.zip");
  const hole = 2 ** 32 + (1 << 20);
  const size = writeHandMadeZip(path, [
    { name: "pad.bin", hole },
    { name: "after.txt", data: bytesOf("read past 4 GiB") },
  ]);
  t.true(statSync(path).size > 2 ** 32);
  t.true(statSync(path).blocks * 512 < 1 << 20); // nothing was written in the hole
  t.is(statSync(path).size, size);
  const archive = openZipFile(path);
  t.teardown(() => archive.close());
  t.is(archive.entries.get("pad.bin")!.size, hole);
  const after = archive.entries.get("after.txt")!;
  t.true(after.dataOffset > 2 ** 32);
  t.is(Buffer.from(readZipEntry(archive, "after.txt")).toString(), "read past 4 GiB");
  const error = t.throws(() => readZipEntry(archive, "pad.bin"), { instanceOf: FileFormatError });
  t.regex(error.message, /member pad\.bin holds 4296015872 bytes, more than one buffer can hold/);
});

test("every truncation of an archive is a FileFormatError naming the file, never a RangeError", (t) => {
  const bytes = handMadeZipBytes(
    [
      { name: "stored", data: bytesOf("stored member") },
      { name: "deflated", data: bytesOf("deflated ".repeat(20)), deflate: true },
    ],
    { zip64: true },
  );
  for (let length = 0; length < bytes.length; length++) {
    const error = t.throws(
      () => {
        const archive = openZip(bytes.subarray(0, length), "cut.zip");
        for (const name of archive.entries.keys()) readZipEntry(archive, name);
      },
      { instanceOf: FileFormatError },
      `cut at ${length}`,
    );
    t.is(error.file, "cut.zip");
  }
});

test("an extra field or a name running past the central directory: FileFormatError, not a RangeError", (t) => {
  const bytes = handMadeZipBytes([{ name: "a", data: bytesOf("a") }, { name: "b", data: bytesOf("b") }]);
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const second = directory + 47;
  for (const [field, what] of [[30, "extra"], [28, "name"], [32, "comment"]] as const) {
    const damaged = Buffer.from(bytes);
    damaged.writeUInt16LE(0xfff0, second + field);
    t.throws(() => openZip(damaged, "x.zip"), { instanceOf: FileFormatError, message: /runs past the directory's end/ }, what);
  }
  const lying = Buffer.from(bytes);
  lying.writeUInt16LE(8, directory + 30); // first record: an 8-byte extra field whose own length says 0xffff
  const shifted = Buffer.concat([lying.subarray(0, directory + 47), Buffer.from([0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0]), lying.subarray(directory + 47)]);
  shifted.writeUInt32LE(shifted.readUInt32LE(shifted.length - 22 + 12) + 8, shifted.length - 22 + 12);
  t.throws(() => openZip(shifted, "x.zip"), { instanceOf: FileFormatError, message: /extra field of a overruns its header/ });
});

test("a local header whose name differs from the central directory's is refused, as Python's zipfile does", (t) => {
  const bytes = handMadeZipBytes([{ name: "depth.npy", data: bytesOf("x") }]);
  bytes[30] = 0x44; // "Depth.npy" in the local header
  t.throws(() => openZip(bytes, "n.zip"), { instanceOf: FileFormatError, message: /the name of member depth\.npy differs between the central directory and its local header/ });
});

test("a deflate bomb stops at the declared size, and a size no stream that short could reach is refused up front", (t) => {
  const huge = new Uint8Array(256 << 20); // 256 MiB of zeros deflate to ~256 KB
  const bytes = handMadeZipBytes([{ name: "bomb", data: huge, deflate: true }]);
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const lying = Buffer.from(bytes);
  lying.writeUInt32LE(1000, directory + 24); // declares 1000 bytes
  const before = process.memoryUsage().rss;
  t.throws(() => readZipEntry(openZip(lying, "bomb.zip"), "bomb"), { instanceOf: FileFormatError, message: /inflates past its declared size of 1000 bytes/ });
  t.true(process.memoryUsage().rss - before < 64 << 20);
  const head = readZipEntryHead(openZip(lying), "bomb", 128);
  t.is(head.length, 128);
  const boasting = handMadeZipBytes([{ name: "small", data: bytesOf("tiny"), deflate: true }]);
  boasting.writeUInt32LE(0xfffffff0, boasting.readUInt32LE(boasting.length - 22 + 16) + 24);
  t.throws(() => readZipEntry(openZip(boasting, "b.zip"), "small"), {
    instanceOf: FileFormatError,
    message: /member small declares 4294967280 bytes, more than its \d+ deflated bytes can hold/,
  });
});

test("readZipEntryHead gives the first bytes of stored and deflated members, inflating only a prefix", (t) => {
  const text = bytesOf("0123456789".repeat(1000));
  const archive = openZip(handMadeZipBytes([{ name: "s", data: text }, { name: "d", data: text, deflate: true }]));
  for (const name of ["s", "d"]) {
    t.is(Buffer.from(readZipEntryHead(archive, name, 25)).toString(), "0123456789012345678901234");
    t.is(readZipEntryHead(archive, name, 1e6).length, text.length);
  }
});

test("openZipFile: a missing file or a folder is a FileFormatError naming it; a closed archive cannot be read", (t) => {
  const dir = tempDir(t);
  t.throws(() => openZipFile(join(dir, "missing.npz")), { instanceOf: FileFormatError, message: /missing\.npz: cannot read the file: no such file/ });
  mkdirSync(join(dir, "folder.npz"));
  t.throws(() => openZipFile(join(dir, "folder.npz")), { instanceOf: FileFormatError, message: /folder\.npz: cannot read the file: it is a folder/ });
  const path = join(dir, "a.zip");
  writeZip(path, [["a", bytesOf("a")]]);
  const archive = openZipFile(path);
  archive.close();
  archive.close();
  t.throws(() => readZipEntry(archive, "a"), { instanceOf: FileFormatError, message: /closed/ });
});

test("a name listed twice in the central directory is refused: tools disagree on which one is the member", (t) => {
  const bytes = handMadeZipBytes([{ name: "a.npy", data: bytesOf("first") }, { name: "b.npy", data: bytesOf("second") }]);
  const directory = bytes.readUInt32LE(bytes.length - 22 + 16);
  const second = directory + 46 + "a.npy".length;
  bytes.write("a", second + 46, "latin1"); // the central record of "b.npy" now says "a.npy"
  bytes.write("a", bytes.indexOf("b.npy"), "latin1"); // and so does its local header
  const error = t.throws(() => openZip(bytes, "d.zip"), { instanceOf: FileFormatError });
  t.is(error.key, "a.npy");
  t.regex(error.message, /member a\.npy is listed twice in the central directory/);
});
