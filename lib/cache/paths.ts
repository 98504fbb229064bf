/**
 * Where endosynth keeps what it derives from checkpoints (converted ONNX models, TensorRT engines).
 * @module
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * The cache folder: the `cacheDir` option when given, else `$ENDOSYNTH_CACHE`, else
 * `$XDG_CACHE_HOME/endosynth`, else `~/.cache/endosynth`.
 */
export function cacheRoot(cacheDir?: string): string {
  if (cacheDir) return resolve(cacheDir);
  if (process.env.ENDOSYNTH_CACHE) return resolve(process.env.ENDOSYNTH_CACHE);
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "endosynth");
}
