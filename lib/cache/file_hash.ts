/**
 * Content hashes of large files (checkpoints, ONNX weights), streamed so memory stays flat.
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** SHA-256 of a file's content, hex. ~1.3 GB/s here (SHA-NI), so 0.3 s for a ViT-B checkpoint. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
