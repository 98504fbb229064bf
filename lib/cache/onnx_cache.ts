/**
 * The cache of converted models. An entry is a folder `<cache>/onnx/<model>-<key>/` holding the
 * converter's files and a `manifest.json` listing each file's size and SHA-256. The key covers
 * everything that changes the ONNX: the checkpoint's content hash, the converter version and the
 * conversion options.
 *
 * Any number of processes may convert, load and evict the same model at once:
 * - an entry is built in a temporary folder and renamed into place whole, so a reader sees a
 *   complete entry or none;
 * - builders of one key take turns (a lock file, taken over when its owner died), and the second
 *   one finds the first one's entry instead of converting again;
 * - an entry is verified every time it is used: the manifest's form and key, every file it names
 *   (size and SHA-256, remembered by file stamp so an unchanged entry is not read again), and no
 *   file it does not name. A damaged, partial or stale entry is rebuilt, with a warning; it is
 *   never used, and never deleted while it could be sound.
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { removeStaleTemporaries, syncFolder, temporaryPathFor } from "../io/atomic.js";
import { withLock } from "../io/lock.js";
import type { ProgressCallback } from "../progress.js";
import { fileSha256 } from "./file_stamps.js";
import { sha256File } from "./file_hash.js";

/** Everything that determines a converted model's content. */
export interface ConversionKey {
  model: string;
  checkpointSha256: string;
  converterVersion: string;
  options: Record<string, string | number | boolean>;
}

interface ManifestFile {
  name: string;
  size: number;
  sha256: string;
}

interface Manifest {
  format: 1;
  key: ConversionKey;
  files: ManifestFile[];
}

/** A verified cache entry. */
export interface CachedModel {
  /** The entry's folder. */
  dir: string;
  /** Path of the ONNX graph file inside it. */
  onnxPath: string;
  /** SHA-256 over the manifest's file hashes: identifies the converted model (TensorRT engine keys use it). */
  contentHash: string;
  /** True when this call converted the model; false when a verified entry was reused. */
  converted: boolean;
}

/** What a cache lookup reports while it works. */
export interface CacheOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

const MANIFEST = "manifest.json";
const ONNX_FILE = "model.onnx";

/**
 * Files a backend derives from an entry and keeps beside it (ONNX Runtime's optimized graph), each
 * with its own check: not part of the manifest.
 */
export const DERIVED_FILE_PREFIX = `${ONNX_FILE}.derived-`;

function keyDigest(key: ConversionKey): string {
  const canonical = JSON.stringify({ ...key, options: Object.fromEntries(Object.entries(key.options).sort()) });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 24);
}

function contentHashOf(files: readonly ManifestFile[]): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort((a, b) => a.name.localeCompare(b.name))) hash.update(`${file.name}\0${file.sha256}\n`);
  return hash.digest("hex");
}

/** Whether `name` in an entry folder belongs to the manifest's world (not a lock, temporary or derived file). */
function isEntryFile(name: string): boolean {
  return name !== MANIFEST && !name.startsWith(".") && !name.startsWith(DERIVED_FILE_PREFIX);
}

/** The manifest in `text` when it has the right form for `key`, else what is wrong with it. */
function parseManifest(text: string, key: ConversionKey): Manifest | string {
  let manifest: Partial<Manifest>;
  try {
    manifest = JSON.parse(text) as Partial<Manifest>;
  } catch {
    return "its manifest is not JSON";
  }
  if (manifest?.format !== 1 || typeof manifest.key !== "object" || manifest.key === null || !Array.isArray(manifest.files)) return "its manifest has the wrong form";
  if (keyDigest(manifest.key) !== keyDigest(key)) return "its manifest is for another conversion";
  for (const file of manifest.files as unknown[]) {
    const { name, size, sha256 } = (file ?? {}) as Partial<ManifestFile>;
    if (typeof name !== "string" || !isEntryFile(name) || /[/\\]/.test(name) || !Number.isSafeInteger(size) || size! < 0 || typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) {
      return "its manifest lists a file in the wrong form";
    }
  }
  if (!manifest.files.some((file) => file.name === ONNX_FILE)) return `its manifest does not list ${ONNX_FILE}`;
  return manifest as Manifest;
}

/** The entry's manifest if the entry is complete and intact for this key, else what is wrong. */
async function verifyEntry(cacheRoot: string, dir: string, key: ConversionKey, onHash: () => void): Promise<Manifest | string> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), "utf8");
  } catch {
    return "it has no manifest";
  }
  const manifest = parseManifest(text, key);
  if (typeof manifest === "string") return manifest;
  const listed = new Set(manifest.files.map((file) => file.name));
  const unlisted = (await readdir(dir)).filter((name) => isEntryFile(name) && !listed.has(name));
  if (unlisted.length > 0) return `it holds files its manifest does not list (${unlisted.join(", ")})`;
  for (const file of manifest.files) {
    const path = join(dir, file.name);
    const size = await stat(path).then((s) => (s.isFile() ? s.size : -1), () => -1);
    if (size !== file.size) return `${file.name} ${size < 0 ? "is missing" : `has ${size} bytes, not ${file.size}`}`;
    if ((await fileSha256(path, cacheRoot, onHash)) !== file.sha256) return `${file.name} does not have the SHA-256 its manifest records`;
  }
  return manifest;
}

async function describeFiles(dir: string): Promise<ManifestFile[]> {
  const names = (await readdir(dir)).filter(isEntryFile).sort();
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      return { name, size: (await stat(path)).size, sha256: await sha256File(path) };
    }),
  );
}

/** `<cache>/onnx`, made when missing; a file in its place is the user's to move. */
async function onnxFolder(cacheRoot: string): Promise<string> {
  const folder = join(cacheRoot, "onnx");
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTDIR") {
      throw new InputError(`The cache folder ${folder} cannot be made: a file is in its way. Move it, or choose another cache (cacheDir option or $ENDOSYNTH_CACHE).`, { file: folder, key: "cacheDir", cause: error });
    }
    throw new InputError(`The cache folder ${folder} cannot be made (${code}): choose another cache (cacheDir option or $ENDOSYNTH_CACHE).`, { file: folder, key: "cacheDir", cause: error });
  }
  return folder;
}

function cached(dir: string, manifest: Manifest, converted: boolean): CachedModel {
  return { dir, onnxPath: join(dir, ONNX_FILE), contentHash: contentHashOf(manifest.files), converted };
}

/** Takes a damaged entry out of the way whole (a rename), then deletes it; readers of its files keep them. */
async function discard(dir: string): Promise<void> {
  const aside = temporaryPathFor(dir);
  try {
    await rename(dir, aside);
  } catch {
    return;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Builds the entry in a temporary folder, then renames it into place. */
async function build(dir: string, key: ConversionKey, convert: (onnxPath: string) => Promise<unknown>): Promise<Manifest> {
  const building = temporaryPathFor(dir);
  await mkdir(building);
  try {
    await convert(join(building, ONNX_FILE));
    const manifest: Manifest = { format: 1, key, files: await describeFiles(building) };
    await writeFile(join(building, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`, { flush: true });
    syncFolder(building);
    await rename(building, dir);
    syncFolder(join(dir, ".."));
    return manifest;
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Returns the verified cache entry for `key`, converting when there is none (or it is damaged):
 * `convert(onnxPath)` must write the ONNX file at `onnxPath` (and any side files in its folder).
 * @throws {@link endosynth!InputError | InputError} when the cache folder cannot be made.
 */
export async function cachedConversion(
  cacheRoot: string,
  key: ConversionKey,
  convert: (onnxPath: string) => Promise<unknown>,
  options: CacheOptions = {},
): Promise<CachedModel> {
  const folder = await onnxFolder(cacheRoot);
  const name = `${key.model}-${keyDigest(key)}`;
  const dir = join(folder, name);
  const onHash = (): void => options.onProgress?.({ phase: "verifying cached model", detail: dir });
  const existing = await verifyEntry(cacheRoot, dir, key, onHash);
  if (typeof existing !== "string") return cached(dir, existing, false);

  return withLock(
    join(folder, `.${name}.endosynth-lock`),
    async () => {
      await removeStaleTemporaries(folder);
      // Whoever held the lock may have built the entry meanwhile.
      const again = await verifyEntry(cacheRoot, dir, key, onHash);
      if (typeof again !== "string") return cached(dir, again, false);
      const present = await stat(dir).then(() => true, () => false);
      if (present) {
        const warning = `endosynth: the cached model ${dir} is not usable (${again}); converting it again`;
        options.onProgress?.({ phase: "rebuilding cached model", detail: again });
        process.emitWarning(warning, { code: "ENDOSYNTH_CACHE_REBUILT" });
        await discard(dir);
      }
      return cached(dir, await build(dir, key, convert), true);
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: () => options.onProgress?.({ phase: "waiting for another process converting this model", detail: dir }),
    },
  );
}
