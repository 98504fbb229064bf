/**
 * The TensorRT backend: runs a converted model's ONNX with a TensorRT engine on an NVIDIA GPU,
 * through the native addon. Split by concern: loading the addon (`addon.ts`), whether TensorRT
 * can run here (`status.ts`), engine build and cache (`engine_provider.ts`), execution
 * (`session.ts`, `slot_pool.ts`).
 * @module
 */
export { openTensorRT, TensorRTSession, type TensorRTEngineInfo, type TensorRTTimings } from "./session.js";
export { DEFAULT_INFLIGHT, type TensorRTOptions } from "./options.js";
export { tensorrtLog, tensorrtStatus, type TensorRTDevice, type TensorRTStatus } from "./status.js";
