/**
 * Helpers shared by the io tests, above all {@link handMadeZip}: a zip writer written from the
 * specification (PKWARE APPNOTE), independent of lib/io/zip_writer.ts, so the reader is checked
 * against archives our own writer never makes (zip64 records for small archives, wrapped member
 * counts, huge sparse members, code page 437 names).
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { crc32, createDeflateRaw, deflateRawSync } from "node:zlib";
import { ZipWriter } from "../../lib/io/zip_writer.js";
import { temporaryDirectory } from "../support/fixtures.js";

export function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Writes members with our ZipWriter and returns the archive's bytes. */
export function writeZip(path: string, members: [string, Uint8Array | Uint8Array[], { compress?: boolean; align?: number }?][]): Uint8Array {
  const writer = new ZipWriter(path);
  for (const [name, data, options] of members) writer.add(name, data, options);
  writer.finish();
  return readFileSync(path);
}

/** One member of a {@link handMadeZip}. */
export interface HandMadeMember {
  /** Its name: a string is written as UTF-8 with the UTF-8 flag when not ASCII; bytes are written as given, unflagged. */
  name: string | Uint8Array;
  /** Its content; or `hole` bytes of zeros that are never materialised (a sparse region of a file). */
  data?: Uint8Array;
  hole?: number;
  /** Deflate the content. */
  deflate?: boolean;
}

/** Options of {@link handMadeZip}. */
export interface HandMadeZipOptions {
  /** Write zip64 extra fields and the zip64 end records whatever the sizes (as NumPy's force_zip64 does for members). */
  zip64?: boolean;
  /** The member count written in the 16-bit end record field; default the real count (mod 65536, as some writers wrap it). */
  wrapCount?: boolean;
}

/** A zip archive as pieces at offsets (holes between them are zeros), and its total size. */
export interface HandMadeZip {
  pieces: { at: number; bytes: Uint8Array }[];
  size: number;
}

/** Builds a zip archive from the specification, member by member. */
export function handMadeZip(members: HandMadeMember[], options: HandMadeZipOptions = {}): HandMadeZip {
  const zip64 = options.zip64 ?? false;
  const pieces: { at: number; bytes: Uint8Array }[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const member of members) {
    const utf8 = typeof member.name === "string" && /[^\x00-\x7f]/.test(member.name);
    const name = typeof member.name === "string" ? Buffer.from(member.name, "utf8") : Buffer.from(member.name);
    const content = member.data ?? new Uint8Array(0);
    const stored = member.deflate ? deflateRawSync(content) : content;
    const size = member.hole ?? content.length;
    const compressedSize = member.hole ?? stored.length;
    const crc = member.hole === undefined ? crc32(content) : 0;
    const wide = zip64 || size >= 0xffffffff || offset >= 0xffffffff;
    const local = Buffer.alloc(30 + name.length + (wide ? 20 : 0));
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(wide ? 45 : 20, 4);
    local.writeUInt16LE(utf8 ? 0x800 : 0, 6);
    local.writeUInt16LE(member.deflate ? 8 : 0, 8);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(wide ? 0xffffffff : compressedSize, 18);
    local.writeUInt32LE(wide ? 0xffffffff : size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(wide ? 20 : 0, 28);
    name.copy(local, 30);
    if (wide) {
      local.writeUInt16LE(1, 30 + name.length);
      local.writeUInt16LE(16, 32 + name.length);
      local.writeBigUInt64LE(BigInt(size), 34 + name.length);
      local.writeBigUInt64LE(BigInt(compressedSize), 42 + name.length);
    }
    const entry = Buffer.alloc(46 + name.length + (wide ? 28 : 0));
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(wide ? 45 : 20, 4);
    entry.writeUInt16LE(wide ? 45 : 20, 6);
    entry.writeUInt16LE(utf8 ? 0x800 : 0, 8);
    entry.writeUInt16LE(member.deflate ? 8 : 0, 10);
    entry.writeUInt16LE(0x21, 14);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(wide ? 0xffffffff : compressedSize, 20);
    entry.writeUInt32LE(wide ? 0xffffffff : size, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt16LE(wide ? 28 : 0, 30);
    entry.writeUInt32LE(wide ? 0xffffffff : offset, 42);
    name.copy(entry, 46);
    if (wide) {
      entry.writeUInt16LE(1, 46 + name.length);
      entry.writeUInt16LE(24, 48 + name.length);
      entry.writeBigUInt64LE(BigInt(size), 50 + name.length);
      entry.writeBigUInt64LE(BigInt(compressedSize), 58 + name.length);
      entry.writeBigUInt64LE(BigInt(offset), 66 + name.length);
    }
    central.push(entry);
    pieces.push({ at: offset, bytes: local });
    offset += local.length;
    if (member.hole === undefined) pieces.push({ at: offset, bytes: stored });
    offset += compressedSize;
  }
  const directory = Buffer.concat(central);
  const directoryOffset = offset;
  pieces.push({ at: offset, bytes: directory });
  offset += directory.length;
  const count = members.length;
  const needs64 = zip64 || directoryOffset >= 0xffffffff || (count > 0xffff && !options.wrapCount);
  const end = Buffer.alloc((needs64 ? 76 : 0) + 22);
  let at = 0;
  if (needs64) {
    end.writeUInt32LE(0x06064b50, 0);
    end.writeBigUInt64LE(44n, 4);
    end.writeUInt16LE(45, 12);
    end.writeUInt16LE(45, 14);
    end.writeBigUInt64LE(BigInt(count), 24);
    end.writeBigUInt64LE(BigInt(count), 32);
    end.writeBigUInt64LE(BigInt(directory.length), 40);
    end.writeBigUInt64LE(BigInt(directoryOffset), 48);
    end.writeUInt32LE(0x07064b50, 56);
    end.writeBigUInt64LE(BigInt(offset), 64);
    end.writeUInt32LE(1, 72);
    at = 76;
  }
  end.writeUInt32LE(0x06054b50, at);
  const shortCount = needs64 ? 0xffff : count & 0xffff;
  end.writeUInt16LE(shortCount, at + 8);
  end.writeUInt16LE(shortCount, at + 10);
  end.writeUInt32LE(needs64 ? 0xffffffff : directory.length, at + 12);
  end.writeUInt32LE(needs64 ? 0xffffffff : directoryOffset, at + 16);
  pieces.push({ at: offset, bytes: end });
  return { pieces, size: offset + end.length };
}

/** The archive's bytes (holes as zeros). */
export function handMadeZipBytes(members: HandMadeMember[], options?: HandMadeZipOptions): Buffer {
  const zip = handMadeZip(members, options);
  const bytes = Buffer.alloc(zip.size);
  for (const piece of zip.pieces) bytes.set(piece.bytes, piece.at);
  return bytes;
}

/** Writes the archive to a file, leaving its holes unwritten (sparse: a 5 GiB archive takes kilobytes). */
export function writeHandMadeZip(path: string, members: HandMadeMember[], options?: HandMadeZipOptions): number {
  const zip = handMadeZip(members, options);
  const fd = openSync(path, "w");
  try {
    for (const piece of zip.pieces) writeSync(fd, piece.bytes, 0, piece.bytes.length, piece.at);
  } finally {
    closeSync(fd);
  }
  return zip.size;
}

/** A raw deflate stream of `head` followed by `zeros` zero bytes, made in 1 MiB steps (never whole in memory). */
export async function deflatedWithZeros(head: Uint8Array, zeros: number): Promise<Buffer> {
  const deflate = createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on("data", (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise((resolve) => deflate.on("end", resolve));
  deflate.write(head);
  const block = new Uint8Array(1 << 20);
  for (let left = zeros; left > 0; left -= block.length) {
    if (!deflate.write(block.subarray(0, Math.min(left, block.length)))) await new Promise((resolve) => deflate.once("drain", resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat(chunks);
}
