/**
 * `endosynth/checkpoint`: the authors' checkpoints as state dicts, their conversion to ONNX, the
 * model registry, and what a converted ONNX file says about itself.
 * @module endosynth/checkpoint
 */
export {
  readStateDict,
  readStateDictFromBytes,
  type Checkpoint,
  type CheckpointFormat,
  type CheckpointInfo,
  type DroppedEntry,
  type ReadStateDictFromBytesOptions,
  type ReadStateDictOptions,
  type StateDict,
} from "./state_dict.js";
export type { ByteOrder } from "./pth.js";
export { convertCheckpoint, converterVersion, type ChannelOrder, type ConversionReport, type ConvertOptions, type Precision } from "../convert/convert.js";
export { checkpointPath } from "../model.js";
export { pull, type PullOptions, type PullProgress, type PullResult } from "../pull/pull.js";
export { MODEL_NAMES, modelSpec, modelSpecs, type ModelName, type ModelSpec } from "../models/registry.js";
export type { Normalisation } from "../models/blocks/preprocess.js";
export type { StateDictLike, UnusedKey } from "../models/weights.js";
export { readOnnxMetadata, type OnnxModelInfo, type OpsetImport } from "../onnx/metadata.js";
export { checkTensorRTSupport, type OperatorVerdict, type TensorRTSupportReport } from "../backends/tensorrt/onnx_support.js";
export type { SupportMatrixSource } from "../backends/tensorrt/onnx_operators.js";
export { exportTriton, type ExportTritonOptions, type TritonExport, type TritonModelFolder, type TritonTensor } from "../export/triton.js";
