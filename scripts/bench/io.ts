/**
 * The `io` suite: reading, visualising and writing a 1080x1920 EndoSynth-format sample (a
 * synthetic one, made here, written stored and compressed to a temporary folder).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeNpy } from "../../lib/io/npy.js";
import { readSample, writeSample } from "../../lib/io/sample.js";
import { syntheticSample } from "../../lib/io/synthetic_sample.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { sample2png } from "../../lib/viz/sample2png.js";
import { seg2rgb } from "../../lib/viz/seg2rgb.js";
import type { Suite } from "./harness.js";

let folder: string | undefined;

/** Targets of issue 2 on the 2-core reference machine. */
const READ_STORED_TARGET_MS = 25;
const SAMPLE2PNG_TARGET_MS = 400;

export const ioSuite: Suite = {
  description: "EndoSynth sample I/O and visualisation, 1080x1920",
  setup: () => {
    folder = mkdtempSync(join(tmpdir(), "endosynth-bench-io-"));
    const dir = folder;
    const sample = syntheticSample();
    const stored = join(dir, "stored.npz");
    const compressed = join(dir, "compressed.npz");
    writeSample(stored, sample);
    writeSample(compressed, sample, { compress: true });
    return [
      { name: "readSample (stored, np.savez)", run: () => readSample(stored), compare: { kind: "target", ms: READ_STORED_TARGET_MS } },
      { name: "readSample (compressed)", run: () => readSample(compressed) },
      { name: "depth2rgb (float16, 0.02..0.2)", run: () => depth2rgb(sample.depth, 0.02, 0.2) },
      { name: "seg2rgb", run: () => seg2rgb(sample.seg) },
      { name: "sample2png", run: () => sample2png(sample, join(dir, "sample.png")), compare: { kind: "target", ms: SAMPLE2PNG_TARGET_MS } },
      { name: "writeNpy (rgb, 6.2 MB)", run: () => writeNpy(join(dir, "rgb.npy"), sample.rgb) },
    ];
  },
  cleanup: () => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  },
};
