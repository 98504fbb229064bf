/**
 * The package's public surface, entry point by entry point: a change to what users can import is
 * a visible diff here, never an accident of an `export *`.
 */
import test from "ava";
import { entryPoints, publicSurfaces, type Surface } from "./support/public_surface.js";

const EXPECTED: Record<string, Surface> = {
  ".": {
    values: [
      "AbortError", "BackendUnavailableError", "CheckpointError", "ChecksumError", "DisposedError",
      "DownloadError", "DownloadTimeoutError", "EndosynthError", "FileFormatError", "InputError",
      "LicenseNotAcceptedError", "MODEL_NAMES", "Model", "RuntimeFailureError", "computeDepthMetrics",
      "depth2rgb", "load", "ndarray", "pull", "readImage", "readNpy", "readSample", "sample2png", "seg2rgb",
      "streamDepth", "tensorrtStatus", "writeImage", "writeNpy", "writeSample",
    ],
    types: [
      "AddonLoadAttempt", "BackendChoice", "BackendName", "ChannelOrder", "DType", "DepthFrame",
      "DepthMetrics", "DepthMetricsOptions", "DepthModel", "DownloadErrorContext", "EndoSynthSample",
      "ErrorContext", "FrameWithData", "ImageDataLike", "ImageInput", "InferOptions", "LoadOptions",
      "ModelName", "NdArray", "Precision", "Progress", "ProgressCallback", "PullOptions", "PullProgress",
      "PullResult", "SharpRawImage", "StreamItem", "StreamOptions", "StreamSource", "TensorRTDevice",
      "TensorRTStatus", "TypedArray",
    ],
  },
  "./io": {
    values: [
      "DTYPES", "HALF_PRECISIONS", "ITEM_SIZE", "MAX_IMAGE_SIDE", "SEG_CLASSES", "ZipWriter", "copy",
      "decodeBfloat16", "decodeFloat16", "encodeFloat16", "encodeNpy", "expectArray", "formatShape",
      "ndarray", "openZip", "openZipFile", "parseNpy", "readImage", "readNpy", "readNpz", "readSample",
      "readZipEntry", "readZipEntryHead", "reshape", "roundFloat16", "size", "syntheticSample",
      "toImageArray", "validateNdArray", "validateSample", "writeImage", "writeNpy", "writeNpz", "writePly",
      "writeSample", "zeros",
    ],
    types: [
      "DType", "DTypeData", "EndoSynthSample", "HalfPrecision", "ImageDataLike", "ImageInput",
      "ImageOrientation", "NdArray", "NpySource", "ReadImageOptions", "ReadNpyOptions", "ReadZipEntryOptions",
      "SegClass", "SharpRawImage", "SyntheticSampleOptions", "TypedArray", "WriteImageOptions",
      "WriteNpzOptions", "WriteSampleOptions", "ZipAddOptions", "ZipArchive", "ZipEntry",
    ],
  },
  "./viz": {
    values: [
      "DEPTH_DTYPES", "SET2_COLORS", "SET2_UINT8", "SPECTRAL_LUT", "SPECTRAL_UINT8", "depth2rgb",
      "depthColorIndex", "depthToPointCloud", "depthToPoints", "sample2png", "sample2rgb", "seg2rgb",
    ],
    types: [
      "FloatDType", "Intrinsics", "PointCloud", "PointCloudOptions", "Sample2pngOptions",
    ],
  },
  "./video": {
    values: [
      "DepthStackWriter", "VIDEO_OUTPUT_EXTENSIONS", "checkAudioCopy", "createVideoWriter",
      "encodeDepthPng16", "encodeDepthTiff", "findFfmpegPrograms", "isLiveSource", "probeVideo", "readVideo",
      "readVideoFrames", "streamDepth", "videoEncodingFor", "writeDepthPng16", "writeDepthTiff",
    ],
    types: [
      "DepthFrame", "DepthModel", "DepthPngOptions", "FfmpegOptions", "FfmpegPrograms", "FrameWithData",
      "ProgramOrigin", "QueuePolicy", "ReadVideoOptions", "StackedFrame", "StreamItem", "StreamOptions",
      "StreamSource", "VideoEncoding", "VideoFrame", "VideoInfo", "VideoWarning", "VideoWriter",
      "VideoWriterOptions",
    ],
  },
  "./eval": {
    values: [
      "ALIGNMENTS", "METRIC_GROUPS", "METRIC_NAMES", "computeDepthMetrics", "evaluateDataset",
      "formatAggregate", "listSamples", "mergeRows", "shardSamples", "writeEvalPlots",
    ],
    types: [
      "AggregateGroup", "Alignment", "DatasetSample", "DepthMetrics", "DepthMetricsOptions", "DepthProfile",
      "EvalAggregate", "EvalEvent", "EvalSummary", "EvaluateDatasetOptions", "FormatAggregateOptions",
      "GroupMetrics", "ListSamplesOptions", "MergeRowsOptions", "MergeSummary", "MetricName", "MetricValues",
      "ModelAggregate", "Shard", "Weighting",
    ],
  },
  "./checkpoint": {
    values: [
      "MODEL_NAMES", "checkTensorRTSupport", "checkpointPath", "convertCheckpoint", "converterVersion",
      "exportTriton", "modelSpec", "modelSpecs", "pull", "readOnnxMetadata", "readStateDict",
      "readStateDictFromBytes",
    ],
    types: [
      "ByteOrder", "ChannelOrder", "Checkpoint", "CheckpointFormat", "CheckpointInfo", "ConversionReport",
      "ConvertOptions", "DroppedEntry", "ExportTritonOptions", "ModelName", "ModelSpec", "Normalisation",
      "OnnxModelInfo", "OperatorVerdict", "OpsetImport", "Precision", "PullOptions", "PullProgress",
      "PullResult", "ReadStateDictFromBytesOptions", "ReadStateDictOptions", "StateDict", "StateDictLike",
      "SupportMatrixSource", "TensorRTSupportReport", "TritonExport", "TritonModelFolder", "TritonTensor",
      "UnusedKey",
    ],
  },
  "./server": {
    values: [
      "DEPTH_FORMATS", "DepthServer", "serveDepth",
    ],
    types: [
      "DepthFormat", "DepthRange", "LiveFrame", "LiveOptions", "LiveSource", "LiveSummary",
      "PartialIntrinsics", "ServeOptions", "ServedModel",
    ],
  },
};

const surfaces = publicSurfaces();

test("every entry point of package.json exports exactly the names listed here", (t) => {
  t.deepEqual(Object.keys(surfaces).sort(), Object.keys(EXPECTED).sort());
  for (const [subpath, expected] of Object.entries(EXPECTED)) t.deepEqual(surfaces[subpath], expected, subpath);
});

test("the package root stays a small front door: at most 40 names exist at run time", (t) => {
  t.true(EXPECTED["."]!.values.length <= 40, `${EXPECTED["."]!.values.length} run-time names at the root`);
});

test("what each entry point exports at run time is what its types declare", async (t) => {
  for (const [subpath, file] of Object.entries(entryPoints())) {
    const module = (await import(file)) as Record<string, unknown>;
    t.deepEqual(Object.keys(module).sort(), surfaces[subpath]!.values, subpath);
  }
});
