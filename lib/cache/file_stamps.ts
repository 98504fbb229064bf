/**
 * Content hashes of large files (checkpoints, converted weights), remembered by the file's stamp:
 * size, modification and change times in nanoseconds, device and inode. A file whose stamp is
 * unchanged is not read again, so loading an unchanged 1.4 GB checkpoint costs a `stat` instead of
 * a second of hashing; any change to the file (a write, a replacement, a `touch`) changes the stamp
 * and the file is hashed again. Stamps live in `<cache>/stamps/`, one small file per path.
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeFileAtomicSync } from "../io/atomic.js";
import { sha256File } from "./file_hash.js";

/** What identifies one version of a file without reading it. */
interface Stamp {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  dev: string;
  ino: string;
}

/** A remembered hash. */
interface StampRecord extends Stamp {
  path: string;
  sha256: string;
  /** When the file was hashed, ns since the epoch. */
  hashedAtNs: string;
}

/**
 * A file modified this close to the moment it was hashed may have changed again within the same
 * timestamp tick after hashing (git's "racily clean" case): its hash is not remembered as trusted.
 */
const RACY_WINDOW_NS = 2_000_000_000n;

async function stampOf(path: string): Promise<Stamp> {
  const s = await stat(path, { bigint: true });
  return { size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs), dev: String(s.dev), ino: String(s.ino) };
}

function sameStamp(a: Stamp, b: Stamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.dev === b.dev && a.ino === b.ino;
}

function recordPath(cacheRoot: string, path: string): string {
  return join(cacheRoot, "stamps", `${createHash("sha256").update(path).digest("hex").slice(0, 32)}.json`);
}

/** The remembered record of `path`, if one exists and is well-formed. */
async function readRecord(file: string, path: string): Promise<StampRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(file, "utf8")) as Partial<StampRecord>;
    const fields = ["size", "mtimeNs", "ctimeNs", "dev", "ino", "sha256", "hashedAtNs"] as const;
    if (record.path !== path || !fields.every((field) => typeof record[field] === "string")) return undefined;
    return /^[0-9a-f]{64}$/.test(record.sha256!) ? (record as StampRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the hash in `record` holds for a file whose stamp is now `now`. */
function trusted(record: StampRecord, now: Stamp): boolean {
  if (!sameStamp(record, now)) return false;
  const latest = BigInt(record.mtimeNs) > BigInt(record.ctimeNs) ? BigInt(record.mtimeNs) : BigInt(record.ctimeNs);
  return BigInt(record.hashedAtNs) - latest > RACY_WINDOW_NS;
}

/**
 * SHA-256 (hex) of the file at `path`: remembered from an earlier call when the file's stamp is
 * unchanged, else read and remembered. `onHash` is called before a file is actually read.
 */
export async function fileSha256(path: string, cacheRoot: string, onHash?: () => void): Promise<string> {
  const absolute = resolve(path);
  const file = recordPath(cacheRoot, absolute);
  const before = await stampOf(absolute);
  const record = await readRecord(file, absolute);
  if (record && trusted(record, before)) return record.sha256;
  onHash?.();
  const hashedAtNs = BigInt(Date.now()) * 1_000_000n;
  const sha256 = await sha256File(absolute);
  const after = await stampOf(absolute);
  // A file that changed while it was read gets no record: its next use hashes it again.
  if (sameStamp(before, after)) {
    try {
      await mkdir(join(cacheRoot, "stamps"), { recursive: true });
      writeFileAtomicSync(file, Buffer.from(JSON.stringify({ path: absolute, ...after, sha256, hashedAtNs: String(hashedAtNs) } satisfies StampRecord)));
    } catch {
      // A cache that cannot be written costs the next load a hash, not this one its result.
    }
  }
  return sha256;
}
