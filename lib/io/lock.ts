/**
 * A lock file shared by processes on one machine (or on one network folder): `<path>` holds its
 * owner's pid, host and a random token. Whoever creates it (exclusive create) holds the lock and
 * touches it every few seconds while working. A lock whose owner has died is taken over at once
 * (same host: its pid is gone) or once it has not been touched for `staleMs` (another host, or a
 * frozen owner), so a process killed mid-work never blocks the next one for long.
 * @module
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { link, open, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import { AbortError } from "../errors.js";
import { isProcessAlive, temporaryPathFor } from "./atomic.js";

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  host: string;
  token: string;
  /** When it was taken, ms since the epoch. */
  since: number;
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Stops waiting for the lock (the work is not started). */
  signal?: AbortSignal;
  /** Called once when the lock is held by another process and this one starts waiting. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** How long an untouched lock lasts, ms (default 30 s; the owner touches it every third of that). */
  staleMs?: number;
}

const POLL_MS = 100;

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as Partial<LockOwner>;
    return typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.token === "string" ? (owner as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the lock at `path` was left by a process that is gone. */
async function isStale(path: string, staleMs: number): Promise<{ stale: boolean; owner: LockOwner | undefined }> {
  const owner = await readOwner(path);
  if (owner && owner.host === hostname() && owner.pid !== process.pid && !isProcessAlive(owner.pid)) return { stale: true, owner };
  const touched = await stat(path).then((s) => s.mtimeMs, () => undefined);
  if (touched === undefined) return { stale: false, owner };
  // A lock being written has no owner yet: give it the same grace as a live one.
  return { stale: Date.now() - touched > staleMs, owner };
}

/**
 * Moves a stale lock aside, unless another process replaced it by a fresh one meanwhile: then that
 * one is put back, untouched (link never overwrites).
 */
async function breakStaleLock(path: string, staleToken: string | undefined): Promise<void> {
  const aside = temporaryPathFor(path);
  try {
    await rename(path, aside);
  } catch {
    return; // someone else broke it first
  }
  const moved = await readOwner(aside);
  if (moved?.token !== staleToken) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "wx");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(owner));
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(new AbortError("Waiting for a lock was aborted"));
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

/**
 * Runs `work` while holding the lock file at `path`, waiting for other holders first. The lock is
 * released when `work` settles, and left for the next process to break if this one dies.
 * @throws {@link endosynth!AbortError | AbortError} when `signal` aborts while waiting.
 */
export async function withLock<T>(path: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 30_000;
  const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString("hex"), since: Date.now() };
  let waited = false;
  for (;;) {
    if (options.signal?.aborted) throw new AbortError("Waiting for a lock was aborted");
    if (await tryCreate(path, owner)) break;
    const { stale, owner: holder } = await isStale(path, staleMs);
    if (stale) {
      await breakStaleLock(path, holder?.token);
      continue;
    }
    if (!waited) options.onWait?.(holder);
    waited = true;
    await sleep(POLL_MS, options.signal);
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, staleMs / 3);
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    if ((await readOwner(path))?.token === owner.token) await rm(path, { force: true });
  }
}
