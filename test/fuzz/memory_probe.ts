/**
 * Child process of memory.test.ts: reads one file with one reader and prints, as JSON, the peak
 * resident memory before the read (modules loaded) and after it, and how the read ended.
 * Usage: node --import tsx test/fuzz/memory_probe.ts <npz|pth|npy|zip|image|onnx> <file>
 */
import { readStateDict } from "../../lib/checkpoint/state_dict.js";
import { EndosynthError } from "../../lib/errors.js";
import { readImage } from "../../lib/io/image.js";
import { readNpy } from "../../lib/io/npy.js";
import { readNpz } from "../../lib/io/npz.js";
import { openZipFile, readZipEntry } from "../../lib/io/zip_reader.js";
import { readOnnxMetadata } from "../../lib/onnx/metadata.js";

const readers: Record<string, (path: string) => unknown> = {
  npz: readNpz,
  pth: readStateDict,
  npy: readNpy,
  image: readImage,
  onnx: readOnnxMetadata,
  zip(path) {
    const archive = openZipFile(path);
    try {
      for (const name of archive.entries.keys()) readZipEntry(archive, name);
    } finally {
      archive.close();
    }
  },
};

const [reader, path] = process.argv.slice(2);
const peakMiB = () => process.resourceUsage().maxRSS / 1024;
const before = peakMiB();
let outcome: string;
try {
  await readers[reader](path);
  outcome = "read";
} catch (error) {
  outcome = error instanceof EndosynthError ? `${error.name}: ${error.message}` : `untyped ${String(error)}`;
}
console.log(JSON.stringify({ before, after: peakMiB(), outcome }));
