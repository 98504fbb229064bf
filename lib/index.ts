/**
 * endosynth: the EndoSynth monocular metric depth models for endoscopic images, in Node.
 *
 * The front door: what the quick start needs. Load a model, infer depth in metres, read and write
 * the arrays, images and samples around it, and look at the result. The rest lives behind
 * subpaths: `endosynth/io` (arrays, NumPy files, zip, samples, images, point-cloud files),
 * `endosynth/viz` (colour maps, point clouds), `endosynth/video` (ffmpeg files and streams),
 * `endosynth/eval` (metrics and dataset evaluation), `endosynth/checkpoint` (state dicts,
 * conversion to ONNX, the model registry).
 * @module endosynth
 */

// Models
export { load, Model, type InferOptions, type LoadOptions } from "./model.js";
export type { BackendChoice } from "./backends/registry.js";
export { MODEL_NAMES, type ModelName } from "./models/registry.js";
export type { BackendName } from "./backends/backend.js";
export type { Precision } from "./convert/options.js";
export type { ChannelOrder } from "./models/blocks/preprocess.js";
export { streamDepth, type DepthFrame, type DepthModel, type FrameWithData, type StreamItem, type StreamOptions, type StreamSource } from "./stream.js";
export { tensorrtStatus, type TensorRTDevice, type TensorRTStatus } from "./backends/tensorrt/index.js";
export type { AddonLoadAttempt } from "./backends/tensorrt/addon.js";
export type { Progress, ProgressCallback } from "./progress.js";
export { pull, type PullOptions, type PullProgress, type PullResult } from "./pull/pull.js";

// Arrays, files, images
export { ndarray, type DType, type NdArray, type TypedArray } from "./ndarray/ndarray.js";
export type { ImageDataLike, ImageInput, SharpRawImage } from "./ndarray/convert.js";
export { readNpy, writeNpy } from "./io/npy.js";
export { readSample, writeSample, type EndoSynthSample } from "./io/sample.js";
export { readImage, writeImage } from "./io/image.js";

// Visualisation and evaluation
export { depth2rgb } from "./viz/depth2rgb.js";
export { seg2rgb } from "./viz/seg2rgb.js";
export { sample2png } from "./viz/sample2png.js";
export { computeDepthMetrics, type DepthMetrics, type DepthMetricsOptions } from "./eval/metrics.js";

// Errors
export {
  AbortError,
  BackendUnavailableError,
  CheckpointError,
  ChecksumError,
  DisposedError,
  DownloadError,
  DownloadTimeoutError,
  EndosynthError,
  FileFormatError,
  InputError,
  LicenseNotAcceptedError,
  RuntimeFailureError,
  type DownloadErrorContext,
  type ErrorContext,
} from "./errors.js";
