/**
 * The cache of converted models. An entry is a folder `<cache>/onnx/<model>-<key>/` holding the
 * converter's files and a `manifest.json` listing each file's size and SHA-256. The key covers
 * everything that changes the ONNX: the checkpoint's content hash, the converter version and the
 * conversion options. An entry is built in a temporary folder and renamed into place whole, and it
 * is verified (manifest, sizes, hashes) every time it is used: a corrupt, partial or stale entry is
 * rebuilt, never trusted.
 * @module
 */
import { randomBytes, createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
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

const MANIFEST = "manifest.json";
const ONNX_FILE = "model.onnx";

function keyDigest(key: ConversionKey): string {
  const canonical = JSON.stringify({ ...key, options: Object.fromEntries(Object.entries(key.options).sort()) });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 24);
}

function contentHashOf(files: readonly ManifestFile[]): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort((a, b) => a.name.localeCompare(b.name))) hash.update(`${file.name}\0${file.sha256}\n`);
  return hash.digest("hex");
}

async function describeFiles(dir: string): Promise<ManifestFile[]> {
  const names = (await readdir(dir)).filter((name) => name !== MANIFEST).sort();
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      return { name, size: (await stat(path)).size, sha256: await sha256File(path) };
    }),
  );
}

/** The entry's manifest if the entry is complete and intact for this key, else undefined. */
async function verifiedManifest(dir: string, key: ConversionKey): Promise<Manifest | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
  if (manifest.format !== 1 || keyDigest(manifest.key) !== keyDigest(key)) return undefined;
  if (!manifest.files.some((file) => file.name === ONNX_FILE)) return undefined;
  for (const file of manifest.files) {
    const path = join(dir, file.name);
    const size = await stat(path).then((s) => s.size, () => -1);
    if (size !== file.size || (await sha256File(path)) !== file.sha256) return undefined;
  }
  return manifest;
}

function cached(dir: string, manifest: Manifest, converted: boolean): CachedModel {
  return { dir, onnxPath: join(dir, ONNX_FILE), contentHash: contentHashOf(manifest.files), converted };
}

/**
 * Returns the verified cache entry for `key`, converting when there is none (or it is damaged):
 * `convert(onnxPath)` must write the ONNX file at `onnxPath` (and any side files in its folder).
 */
export async function cachedConversion(
  cacheRoot: string,
  key: ConversionKey,
  convert: (onnxPath: string) => Promise<unknown>,
): Promise<CachedModel> {
  const dir = join(cacheRoot, "onnx", `${key.model}-${keyDigest(key)}`);
  const existing = await verifiedManifest(dir, key);
  if (existing) return cached(dir, existing, false);

  const building = `${dir}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  await mkdir(building, { recursive: true });
  try {
    await convert(join(building, ONNX_FILE));
    const manifest: Manifest = { format: 1, key, files: await describeFiles(building) };
    await writeFile(join(building, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
    await rm(dir, { recursive: true, force: true });
    try {
      await rename(building, dir);
    } catch (error) {
      // Another process finished the same conversion first: use its entry if it is sound.
      const theirs = await verifiedManifest(dir, key);
      if (!theirs) throw error;
      await rm(building, { recursive: true, force: true });
      return cached(dir, theirs, false);
    }
    return cached(dir, manifest, true);
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
  }
}
