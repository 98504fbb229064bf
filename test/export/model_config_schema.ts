/**
 * The part of Triton's model configuration schema endosynth's configs use, as a table, and a
 * checker of parsed text-format configs against it. Transcribed from
 * triton-inference-server/common `protobuf/model_config.proto` at commit
 * d5ff696d6722f9f176def0f80650a05a2fbdf381 (messages ModelConfig, ModelInput, ModelOutput,
 * ModelInstanceGroup, ModelOptimizationPolicy and its ExecutionAccelerators/Accelerator, enums
 * DataType and ModelInstanceGroup.Kind). Fields of those messages that endosynth never writes are
 * listed too, so that a config using them is not reported as unknown; messages it never writes
 * (dynamic batching, warm-up, ...) are not described, and a config using them fails the check.
 */
import type { TextField, TextValue } from "./text_format.js";

type FieldType = "string" | "bool" | "int32" | "int64" | "uint32" | `enum:${string}` | `message:${string}` | "map<string,string>";

interface FieldSchema {
  type: FieldType;
  repeated?: boolean;
}

export const ENUMS: Readonly<Record<string, readonly string[]>> = {
  DataType: ["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING", "TYPE_BF16"],
  Kind: ["KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"],
  Format: ["FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW"],
  ModelPriority: ["PRIORITY_DEFAULT", "PRIORITY_MAX", "PRIORITY_MIN"],
};

export const MESSAGES: Readonly<Record<string, Readonly<Record<string, FieldSchema>>>> = {
  ModelConfig: {
    name: { type: "string" },
    platform: { type: "string" },
    backend: { type: "string" },
    max_batch_size: { type: "int32" },
    input: { type: "message:ModelInput", repeated: true },
    output: { type: "message:ModelOutput", repeated: true },
    optimization: { type: "message:ModelOptimizationPolicy" },
    instance_group: { type: "message:ModelInstanceGroup", repeated: true },
    default_model_filename: { type: "string" },
    cc_model_filenames: { type: "map<string,string>" },
    metric_tags: { type: "map<string,string>" },
  },
  ModelInput: {
    name: { type: "string" },
    data_type: { type: "enum:DataType" },
    format: { type: "enum:Format" },
    dims: { type: "int64", repeated: true },
    is_shape_tensor: { type: "bool" },
    allow_ragged_batch: { type: "bool" },
    optional: { type: "bool" },
  },
  ModelOutput: {
    name: { type: "string" },
    data_type: { type: "enum:DataType" },
    dims: { type: "int64", repeated: true },
    label_filename: { type: "string" },
    is_shape_tensor: { type: "bool" },
  },
  ModelInstanceGroup: {
    name: { type: "string" },
    kind: { type: "enum:Kind" },
    count: { type: "int32" },
    gpus: { type: "int32", repeated: true },
    profile: { type: "string", repeated: true },
    passive: { type: "bool" },
    host_policy: { type: "string" },
  },
  ModelOptimizationPolicy: {
    priority: { type: "enum:ModelPriority" },
    execution_accelerators: { type: "message:ExecutionAccelerators" },
    gather_kernel_buffer_threshold: { type: "uint32" },
    eager_batching: { type: "bool" },
  },
  ExecutionAccelerators: {
    gpu_execution_accelerator: { type: "message:Accelerator", repeated: true },
    cpu_execution_accelerator: { type: "message:Accelerator", repeated: true },
  },
  Accelerator: {
    name: { type: "string" },
    parameters: { type: "map<string,string>" },
  },
};

const INTEGER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint32: [0, 2 ** 32 - 1],
};

function checkScalar(path: string, type: FieldType, value: TextValue): string[] {
  if (type === "string") return value.kind === "string" ? [] : [`${path}: expected a string`];
  if (type === "bool") return value.kind === "identifier" && (value.value === "true" || value.value === "false") ? [] : [`${path}: expected true or false`];
  if (type.startsWith("enum:")) {
    const names = ENUMS[type.slice(5)];
    return value.kind === "identifier" && names.includes(value.value) ? [] : [`${path}: expected one of ${type.slice(5)} (${names.join(", ")})`];
  }
  const range = INTEGER_RANGES[type];
  if (value.kind !== "number" || !Number.isInteger(value.value) || /[.eE]/.test(value.text)) return [`${path}: expected an integer`];
  return value.value >= range[0] && value.value <= range[1] ? [] : [`${path}: ${value.value} is out of the ${type} range`];
}

function checkMap(path: string, value: TextValue): string[] {
  if (value.kind !== "message") return [`${path}: expected a { key: ... value: ... } entry`];
  const names = value.fields.map((field) => field.name).sort();
  if (names.join(",") !== "key,value") return [`${path}: a map entry has exactly a key and a value`];
  return value.fields.flatMap((field) => checkScalar(`${path}.${field.name}`, "string", field.value));
}

/** What is wrong with a parsed message of type `message` (empty when it conforms). */
export function checkMessage(message: string, fields: readonly TextField[], path = message): string[] {
  const schema = MESSAGES[message];
  const problems: string[] = [];
  const counts = new Map<string, number>();
  for (const field of fields) {
    const where = `${path}.${field.name}`;
    const spec = schema[field.name];
    if (!spec) {
      problems.push(`${where}: no such field in ${message}`);
      continue;
    }
    counts.set(field.name, (counts.get(field.name) ?? 0) + 1);
    const repeatable = spec.repeated || spec.type === "map<string,string>";
    if (!repeatable && (field.inList || counts.get(field.name)! > 1)) problems.push(`${where}: not a repeated field`);
    if (spec.type === "map<string,string>") problems.push(...checkMap(where, field.value));
    else if (spec.type.startsWith("message:")) {
      if (field.value.kind !== "message") problems.push(`${where}: expected a message`);
      else problems.push(...checkMessage(spec.type.slice(8), field.value.fields, where));
    } else problems.push(...checkScalar(where, spec.type, field.value));
  }
  return problems;
}
