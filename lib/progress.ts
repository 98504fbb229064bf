/**
 * Progress of long work (hashing, conversion, engine builds, downloads). The library never prints:
 * it reports through these callbacks, and the CLI draws them.
 * @module
 */

/** Progress of a long operation (conversion, engine build); `fraction` in [0, 1] when known. */
export interface Progress {
  /** What is being done, e.g. `"building TensorRT engine"`. */
  phase: string;
  /** Completed fraction of the phase in [0, 1], when it can be known. */
  fraction?: number;
  /** Free-form detail for logs (a layer name, a file). */
  detail?: string;
}

/** Receives progress updates; the library never prints, the CLI turns these into progress bars. */
export type ProgressCallback = (progress: Progress) => void;
