/**
 * A Triton Inference Server model repository of the converted models, for users who outgrow one
 * machine and serve the same models on Triton or KServe:
 *
 * ```
 * <dir>/<model>/config.pbtxt          ONNX Runtime backend (CPU or CUDA)
 * <dir>/<model>/1/model.onnx (+ data)
 * <dir>/<model>_trt/config.pbtxt      the same graph through ONNX Runtime's TensorRT accelerator
 * <dir>/<model>_trt/1/model.onnx (+ data)
 * ```
 *
 * The graphs are endosynth's own (one uint8 `[H, W, C]` frame in, float32 `[H, W]` metres out,
 * pre- and post-processing inside), so a Triton client gets exactly what `infer` returns. They take
 * one frame of any size, with no batch axis, so the configs say `max_batch_size: 0` and Triton's
 * dynamic batcher does not apply: frames of different sizes cannot share a batch, and throughput
 * comes from concurrent requests over `instance_group` copies instead (docs/triton.md).
 * @module
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { convertCheckpoint } from "../convert/convert.js";
import type { Precision } from "../convert/options.js";
import { InputError } from "../errors.js";
import { assertBoolean, assertFunction, assertIntegerInRange, assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import { syncFolder, temporaryPathFor, writeFileAtomicSync } from "../io/atomic.js";
import { checkpointPath } from "../model.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import { ONNX_ELEMENT_TYPES, readOnnxGraph } from "../onnx/graph_reader.js";
import type { ProgressCallback } from "../progress.js";

/** Options of {@link exportTriton}. */
export interface ExportTritonOptions {
  /** The models to export. */
  models: readonly ModelName[];
  /** The repository folder to write; it must not exist unless `overwrite`. */
  output: string;
  /** Checkpoint per model; default `$ENDOSYNTH_CHECKPOINTS` or `./checkpoints`, as `load()`. */
  checkpoints?: Partial<Record<ModelName, string>>;
  /** Precision of the network body (default `"fp32"`); `"fp16"` suits the TensorRT variant. */
  precision?: Precision;
  /** Copies of each model Triton runs at once (instance_group count, default 1). */
  instances?: number;
  /** `"gpu"` (default; adds the TensorRT variants) or `"cpu"`. */
  device?: "gpu" | "cpu";
  /** Replace an existing repository. */
  overwrite?: boolean;
  /** Receives each model's conversion progress. */
  onProgress?: ProgressCallback;
}

/** One model folder written. */
export interface TritonModelFolder {
  /** Its name in the repository (the folder name). */
  name: string;
  /** The model it serves. */
  model: ModelName;
  /** `"onnxruntime"`, or `"tensorrt"` for the TensorRT-accelerated variant. */
  accelerator: "onnxruntime" | "tensorrt";
  /** The frame the config declares. */
  input: TritonTensor;
  /** The depth map the config declares. */
  output: TritonTensor;
}

/** A tensor as the config declares it. */
export interface TritonTensor {
  /** The graph's tensor name. */
  name: string;
  /** Triton's data type, e.g. `"TYPE_UINT8"`. */
  dataType: string;
  /** -1 for a dimension of any size. */
  dims: number[];
}

/** What {@link exportTriton} wrote. */
export interface TritonExport {
  /** The repository folder. */
  output: string;
  /** The model folders, in the order written. */
  folders: TritonModelFolder[];
  /** The network body's precision. */
  precision: Precision;
  /** Wall time, seconds. */
  seconds: number;
}

const EXPORT_OPTIONS = ["models", "output", "checkpoints", "precision", "instances", "device", "overwrite", "onProgress"] as const;

/** Triton's TYPE_* names for ONNX element types (model_config.proto DataType). */
const TRITON_TYPES: Readonly<Record<string, string>> = { FLOAT: "TYPE_FP32", FLOAT16: "TYPE_FP16", UINT8: "TYPE_UINT8", INT64: "TYPE_INT64", INT32: "TYPE_INT32", BOOL: "TYPE_BOOL" };

/** TensorRT's workspace for the accelerator: the 4 GiB the engines of these models build within. */
const TENSORRT_WORKSPACE_BYTES = 4 * 2 ** 30;

function checkExportOptions(options: ExportTritonOptions): void {
  assertOptions("options", options, EXPORT_OPTIONS);
  if (!Array.isArray(options.models) || options.models.length === 0) throw invalidParameter("options.models", "a non-empty array of model names", options.models);
  for (const model of options.models) assertOneOf("options.models[]", model, MODEL_NAMES);
  if (new Set(options.models).size !== options.models.length) throw invalidParameter("options.models", "distinct model names", options.models);
  assertString("options.output", options.output);
  if (options.precision !== undefined) assertOneOf("options.precision", options.precision, ["fp32", "fp16"] as const);
  if (options.instances !== undefined) assertIntegerInRange("options.instances", options.instances, 1, 64);
  if (options.device !== undefined) assertOneOf("options.device", options.device, ["gpu", "cpu"] as const);
  if (options.overwrite !== undefined) assertBoolean("options.overwrite", options.overwrite);
  if (options.onProgress !== undefined) assertFunction("options.onProgress", options.onProgress);
  if (options.checkpoints !== undefined) {
    for (const [model, path] of Object.entries(options.checkpoints)) {
      assertOneOf("options.checkpoints key", model, MODEL_NAMES);
      assertString(`options.checkpoints.${model}`, path);
    }
  }
}

/** The config's view of a graph tensor: its Triton type and dims, symbolic ones as -1. */
function tritonTensor(name: string, elementType: number | undefined, dims: readonly (number | string)[] | undefined, file: string): TritonTensor {
  const onnxType = ONNX_ELEMENT_TYPES[elementType ?? 0];
  const dataType = onnxType === undefined ? undefined : TRITON_TYPES[onnxType];
  if (dataType === undefined || dims === undefined) throw new InputError(`${file}: tensor ${name} has no type or shape Triton can declare`, { file, key: name });
  return { name, dataType, dims: dims.map((dim) => (typeof dim === "number" && dim > 0 ? dim : -1)) };
}

function tensorText(field: "input" | "output", tensor: TritonTensor): string {
  return `${field} [\n  {\n    name: "${tensor.name}"\n    data_type: ${tensor.dataType}\n    dims: [ ${tensor.dims.join(", ")} ]\n  }\n]\n`;
}

/** The config.pbtxt of one model folder, in protobuf text format. */
function tritonConfig(folder: TritonModelFolder, options: { instances: number; device: "gpu" | "cpu" }): string {
  let text = `name: "${folder.name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n`;
  text += tensorText("input", folder.input) + tensorText("output", folder.output);
  text += `instance_group [\n  {\n    count: ${options.instances}\n    kind: ${options.device === "gpu" ? "KIND_GPU" : "KIND_CPU"}\n  }\n]\n`;
  if (folder.accelerator === "tensorrt") {
    text += [
      "optimization {",
      "  execution_accelerators {",
      "    gpu_execution_accelerator: [",
      "      {",
      '        name: "tensorrt"',
      '        parameters { key: "precision_mode" value: "FP16" }',
      `        parameters { key: "max_workspace_size_bytes" value: "${TENSORRT_WORKSPACE_BYTES}" }`,
      "      }",
      "    ]",
      "  }",
      "}",
      "",
    ].join("\n");
  }
  return text;
}

/** Converts one model into `<repository>/<model>/1/` and describes its graph's input and output. */
async function convertInto(repository: string, model: ModelName, options: ExportTritonOptions, precision: Precision): Promise<Pick<TritonModelFolder, "input" | "output">> {
  const version = join(repository, model, "1");
  mkdirSync(version, { recursive: true });
  const onnx = join(version, "model.onnx");
  await convertCheckpoint({
    model,
    checkpoint: checkpointPath(model, options.checkpoints?.[model]),
    output: onnx,
    precision,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const graph = readOnnxGraph(onnx);
  const [[inputName, inputType]] = graph.inputs;
  const [[outputName, outputType]] = graph.outputs;
  return {
    input: tritonTensor(inputName, inputType, graph.shapes.get(inputName), onnx),
    output: tritonTensor(outputName, outputType, graph.shapes.get(outputName), onnx),
  };
}

/** Puts the finished repository at `output`, replacing an old one only after the new one is complete. */
function moveIntoPlace(temporary: string, output: string): void {
  if (!existsSync(output)) {
    renameSync(temporary, output);
  } else {
    const old = temporaryPathFor(output);
    renameSync(output, old);
    renameSync(temporary, output);
    rmSync(old, { recursive: true, force: true });
  }
  syncFolder(dirname(output));
}

/**
 * Writes a Triton model repository of `options.models` at `options.output`: each model converted
 * once (as `endosynth convert` does), with a config for Triton's ONNX Runtime backend and, on GPUs,
 * a second folder whose config runs it through ONNX Runtime's TensorRT accelerator in fp16. The
 * repository is built beside `output` and renamed into place when complete.
 * @throws {@link endosynth!InputError | InputError} for bad options, or an `output` that exists without `overwrite`.
 * @throws {@link endosynth!CheckpointError | CheckpointError} for a checkpoint that is missing or does not fit its model.
 */
export async function exportTriton(options: ExportTritonOptions): Promise<TritonExport> {
  checkExportOptions(options);
  const started = performance.now();
  const output = resolve(options.output);
  if (existsSync(output) && !options.overwrite) throw new InputError(`${output} already exists: pass --overwrite (overwrite: true) to replace it`, { file: output });
  if (!existsSync(dirname(output))) throw new InputError(`Cannot write ${output}: its folder does not exist`, { file: output });
  const precision = options.precision ?? "fp32";
  const settings = { instances: options.instances ?? 1, device: options.device ?? "gpu" } as const;
  const temporary = temporaryPathFor(output);
  try {
    const folders: TritonModelFolder[] = [];
    for (const model of options.models) {
      const tensors = await convertInto(temporary, model, options, precision);
      folders.push({ name: model, model, accelerator: "onnxruntime", ...tensors });
      if (settings.device === "gpu") {
        const name = `${model}_trt`;
        cpSync(join(temporary, model, "1"), join(temporary, name, "1"), { recursive: true });
        folders.push({ name, model, accelerator: "tensorrt", ...tensors });
      }
    }
    for (const folder of folders) writeFileAtomicSync(join(temporary, folder.name, "config.pbtxt"), Buffer.from(tritonConfig(folder, settings)));
    moveIntoPlace(temporary, output);
    return { output, folders, precision, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
}
