/**
 * endosynth: the EndoSynth monocular metric depth models for endoscopic images, in Node.
 *
 * The public API, grouped by concern. Everything takes and returns {@link NdArray}s.
 * @module endosynth
 */

// Errors
export {
  AbortError,
  BackendUnavailableError,
  CheckpointError,
  DisposedError,
  EndosynthError,
  type ErrorContext,
  FileFormatError,
  InputError,
  RuntimeFailureError,
} from "./errors.js";

// Arrays
export { copy, type DType, DTYPES, type DTypeData, expectArray, formatShape, HALF_PRECISIONS, type HalfPrecision, ITEM_SIZE, type NdArray, ndarray, reshape, size, type TypedArray, validateNdArray, zeros } from "./ndarray/ndarray.js";
export { decodeBfloat16, decodeFloat16, encodeFloat16, roundFloat16 } from "./ndarray/float16.js";
export { type ImageDataLike, type ImageInput, MAX_IMAGE_SIDE, type SharpRawImage, toImageArray } from "./ndarray/convert.js";

// NumPy files and zip archives
export { encodeNpy, type NpySource, parseNpy, type ReadNpyOptions, readNpy, writeNpy } from "./io/npy.js";
export { readNpz, type WriteNpzOptions, writeNpz } from "./io/npz.js";
export { openZip, type ReadZipEntryOptions, readZipEntry, type ZipAddOptions, type ZipArchive, type ZipEntry, ZipWriter } from "./io/zip.js";

// EndoSynth samples
export { type EndoSynthSample, readSample, SEG_CLASSES, type SegClass, validateSample, type WriteSampleOptions, writeSample } from "./io/sample.js";
export { type SyntheticSampleOptions, syntheticSample } from "./io/synthetic_sample.js";

// Images
export { readImage, type WriteImageOptions, writeImage } from "./io/image.js";

// Visualisation
export type { FloatDType } from "./viz/dtype_arithmetic.js";
export { DEPTH_DTYPES, depth2rgb, depthColorIndex, SPECTRAL_UINT8 } from "./viz/depth2rgb.js";
export { SET2_UINT8, seg2rgb } from "./viz/seg2rgb.js";
export { type Sample2pngOptions, sample2png, sample2rgb } from "./viz/sample2png.js";
export { SET2_COLORS, SPECTRAL_LUT } from "./viz/colormaps.js";

// Models: load, infer, stream
export { type BackendChoice, checkpointPath, type InferOptions, load, type LoadOptions, Model } from "./model.js";
export { MODEL_NAMES, type ModelName, type ModelSpec, modelSpec, modelSpecs } from "./models/registry.js";
export type { Normalisation } from "./models/blocks/preprocess.js";
export type { StateDictLike, UnusedKey } from "./models/weights.js";
export { type ChannelOrder, type ConversionReport, converterVersion, convertCheckpoint, type ConvertOptions, type Precision } from "./convert/convert.js";
export { readOnnxMetadata, type OnnxModelInfo, type OpsetImport } from "./onnx/metadata.js";
export { type DepthFrame, type DepthModel, type FrameWithData, type StreamItem, type StreamOptions, type StreamSource, streamDepth } from "./stream.js";

// Checkpoints
export {
  type Checkpoint,
  type CheckpointFormat,
  type CheckpointInfo,
  type ReadStateDictFromBytesOptions,
  type ReadStateDictOptions,
  readStateDict,
  readStateDictFromBytes,
  type StateDict,
} from "./checkpoint/state_dict.js";
export type { ByteOrder } from "./checkpoint/pth.js";

// Runtimes
export type { BackendName } from "./backends/backend.js";
export type { Progress, ProgressCallback } from "./progress.js";
export { type TensorRTDevice, type TensorRTStatus, tensorrtStatus } from "./backends/tensorrt/index.js";
export type { AddonLoadAttempt } from "./backends/tensorrt/addon.js";

// Evaluation
export {
  type Alignment,
  ALIGNMENTS,
  computeDepthMetrics,
  type DepthMetrics,
  type DepthMetricsOptions,
  type GroupMetrics,
  METRIC_GROUPS,
  METRIC_NAMES,
  type MetricName,
  type MetricValues,
} from "./eval/metrics.js";
export { type DatasetSample, type EvalEvent, type EvalSummary, evaluateDataset, type EvaluateDatasetOptions, listSamples, type ListSamplesOptions } from "./eval/dataset.js";
export type { AggregateGroup, EvalAggregate, ModelAggregate, Weighting } from "./eval/aggregate.js";
export { type FormatAggregateOptions, formatAggregate } from "./eval/report.js";

// Video and point clouds
export { createVideoWriter, type FfmpegOptions, probeVideo, readVideoFrames, type ReadVideoOptions, type VideoInfo, type VideoWriter, type VideoWriterOptions } from "./video/ffmpeg.js";
export { depthToPointCloud, depthToPoints, type Intrinsics, type PointCloud, type PointCloudOptions } from "./geometry/pointcloud.js";
export { writePly } from "./io/ply.js";
