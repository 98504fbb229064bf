import test from "ava";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { InputError } from "../../lib/errors.js";
import { openZip, readZipEntry } from "../../lib/io/zip_reader.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { bytesOf, tempDir, writeZip } from "./helpers.js";

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

test("a path whose folder is missing, is a file, or a target that is a folder: InputError naming it, nothing written", (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "no", "such", "folder", "a.zip");
  const error = t.throws(() => new ZipWriter(missing), { instanceOf: InputError });
  t.is(error.file, missing);
  t.is(error.message, `Cannot write ${missing}: its folder does not exist`);
  writeFileSync(join(dir, "file"), "x");
  t.throws(() => new ZipWriter(join(dir, "file", "a.zip")), { instanceOf: InputError, message: /a part of its path is a file, not a folder/ });
  mkdirSync(join(dir, "folder.zip"));
  t.throws(() => new ZipWriter(join(dir, "folder.zip")), { instanceOf: InputError, message: /folder\.zip: it is a folder$/ });
  t.deepEqual(readdirSync(dir).sort(), ["file", "folder.zip"]);
});

test("the temporary file is named after the target, this process and endosynth-tmp, and only the target remains", (t) => {
  const dir = tempDir(t);
  const writer = new ZipWriter(join(dir, "out.npz"));
  const [temporary] = readdirSync(dir);
  t.regex(temporary, new RegExp(`^\\.out\\.npz\\.${process.pid}\\.[0-9a-f]{8}\\.endosynth-tmp$`));
  writer.add("a", bytesOf("a"));
  writer.finish();
  t.deepEqual(readdirSync(dir), ["out.npz"]);
});
