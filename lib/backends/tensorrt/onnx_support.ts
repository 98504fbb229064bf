/**
 * Whether TensorRT's ONNX parser can import a graph, told without a GPU: every operator, the type
 * of its data tensor, and the restrictions of the support matrix that can be read from the file
 * (constant `axes`, Resize's modes, LayerNormalization's single output, ...) are checked against
 * {@link SUPPORTED_OPERATORS}. It cannot promise a build succeeds (that also depends on shapes,
 * memory and the GPU), but what it refuses the parser refuses.
 * @module
 */
import { elementTypesOf, type GraphNode, ONNX_ELEMENT_TYPES, type OnnxGraph, readOnnxGraph } from "../../onnx/graph_reader.js";
import { type SupportMatrixSource, SUPPORTED_OPERATORS, TENSORRT_MATRIX_SOURCE, type TensorRTType, UNSUPPORTED_OPERATORS } from "./onnx_operators.js";

/** The verdict on one operator type of the graph. */
export interface OperatorVerdict {
  /** The ONNX operator, e.g. `"MatMul"`. */
  opType: string;
  /** Its domain, "" for ONNX's own. */
  domain: string;
  /** How many nodes use it. */
  count: number;
  /** The types of its data tensors in this graph, as the matrix names them. */
  types: string[];
  /** Whether every node of this type passes. */
  supported: boolean;
  /** Why not, one line per distinct reason. */
  problems: string[];
}

/** What {@link checkTensorRTSupport} found. */
export interface TensorRTSupportReport {
  /** The model file checked. */
  file: string;
  /** The default-domain opset the graph imports. */
  opset: number;
  /** True when every operator, type and checked restriction is supported. */
  supported: boolean;
  /** One verdict per operator type, in order of first use. */
  operators: OperatorVerdict[];
  /** Problems of the graph as a whole (its opset). */
  problems: string[];
  /** The support matrix checked against. */
  matrix: SupportMatrixSource;
}

/** The matrix's name for an ONNX element type. */
function matrixType(elementType: number | undefined): string {
  if (elementType === undefined || elementType === 0) return "unknown";
  const names: Record<number, TensorRTType> = { 1: "FP32", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16", 16: "BF16", 17: "FP8", 22: "INT4" };
  return names[elementType] ?? ONNX_ELEMENT_TYPES[elementType] ?? `type ${elementType}`;
}

/** The tensor whose type the matrix's "Supported Types" column is about. */
function dataTensor(node: GraphNode): string | undefined {
  if (node.opType === "Where") return node.inputs[1];
  if (node.opType === "Constant" || node.opType === "ConstantOfShape") return node.outputs[0];
  return node.inputs[0];
}

/** Operators whose input at this index (`axes`, `pads` of a later opset) must be an initializer or a Constant's output. */
const CONSTANT_INPUTS: Readonly<Record<string, number>> = {
  Slice: 3, Squeeze: 1, Unsqueeze: 1, Pad: 3, ReduceMean: 1, ReduceSum: 1, ReduceMax: 1, ReduceMin: 1, ReduceProd: 1,
  ReduceL1: 1, ReduceL2: 1, ReduceLogSum: 1, ReduceLogSumExp: 1, ReduceSumSquare: 1, CumSum: 1,
};

const RESIZE_ALLOWED: Readonly<Record<string, readonly string[]>> = {
  mode: ["nearest", "linear"],
  coordinate_transformation_mode: ["half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"],
  nearest_mode: ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"],
  keep_aspect_ratio_policy: ["stretch"],
};

/** The matrix's restrictions this node breaks, as far as the file shows them. */
function restrictionProblems(node: GraphNode, constants: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const index = CONSTANT_INPUTS[node.opType];
  const input = index === undefined ? undefined : node.inputs[index];
  if (input && !constants.has(input)) problems.push(`input ${index} (${input}) must be an initializer or a constant`);
  if (node.opType === "Resize") {
    for (const [attribute, allowed] of Object.entries(RESIZE_ALLOWED)) {
      const value = node.attributes[attribute];
      if (typeof value === "string" && !allowed.includes(value)) problems.push(`${attribute} "${value}" (supported: ${allowed.join(", ")})`);
    }
    if (node.attributes.antialias === 1) problems.push("antialias is not supported");
  }
  if (node.opType === "LayerNormalization" && node.outputs.slice(1).some(Boolean)) problems.push("only the first output (Y) is supported");
  if (node.opType === "TopK" && node.attributes.sorted === 0) problems.push("sorted must be 1");
  if (node.opType === "ScatterND" && typeof node.attributes.reduction === "string" && node.attributes.reduction !== "none") problems.push("reduction is not supported");
  if (node.opType === "Constant") {
    for (const attribute of ["sparse_value", "value_string", "value_strings"]) if (attribute in node.attributes) problems.push(`the ${attribute} attribute is not supported`);
  }
  return problems;
}

/** Why the matrix refuses this node's op and data type, or nothing. */
function operatorProblems(node: GraphNode, type: string, boundary: ReadonlySet<string>, tensor: string | undefined): string[] {
  if (node.domain !== "") return [`the ${node.domain} domain is not ONNX's: TensorRT needs a plugin for it`];
  const support = SUPPORTED_OPERATORS[node.opType];
  if (UNSUPPORTED_OPERATORS.has(node.opType)) return ["the support matrix marks it unsupported"];
  if (!support) return ["it is not in the support matrix: TensorRT's ONNX parser does not import it"];
  const problems: string[] = [];
  if (type !== "unknown" && !(support.types as readonly string[]).includes(type)) problems.push(`${type} tensors are not supported (supported: ${support.types.join(", ")})`);
  if (type === "UINT8" && tensor !== undefined && !boundary.has(tensor)) problems.push("UINT8 is supported only as a network input or output");
  if (node.opType === "Cast") {
    const target = matrixType(node.attributes.to as number);
    if (!(support.types as readonly string[]).includes(target)) problems.push(`casting to ${target} is not supported`);
  }
  return problems;
}

/** Checks a graph already read (see {@link checkTensorRTSupport}). */
export function checkGraphForTensorRT(graph: OnnxGraph): TensorRTSupportReport {
  const types = elementTypesOf(graph);
  const constants = new Set([...graph.initializers.keys(), ...graph.nodes.filter((node) => node.opType === "Constant").map((node) => node.outputs[0])]);
  const boundary = new Set([...graph.inputs.keys(), ...graph.outputs.keys()]);
  const verdicts = new Map<string, OperatorVerdict & { typeSet: Set<string>; problemSet: Set<string> }>();
  for (const node of graph.nodes) {
    const key = `${node.domain}::${node.opType}`;
    let verdict = verdicts.get(key);
    if (!verdict) {
      verdict = { opType: node.opType, domain: node.domain, count: 0, types: [], supported: true, problems: [], typeSet: new Set(), problemSet: new Set() };
      verdicts.set(key, verdict);
    }
    const tensor = dataTensor(node);
    const type = matrixType(tensor ? types.get(tensor) : undefined);
    verdict.count++;
    verdict.typeSet.add(type);
    for (const problem of [...operatorProblems(node, type, boundary, tensor), ...restrictionProblems(node, constants)]) verdict.problemSet.add(problem);
  }
  const operators = [...verdicts.values()].map(({ typeSet, problemSet, ...verdict }) => ({ ...verdict, types: [...typeSet], problems: [...problemSet], supported: problemSet.size === 0 }));
  const opset = graph.opsets[""] ?? 0;
  const [lowest, highest] = TENSORRT_MATRIX_SOURCE.opsets;
  const problems = opset >= lowest && opset <= highest ? [] : [`opset ${opset} is outside the range TensorRT 10 imports (${lowest} to ${highest})`];
  return { file: graph.file, opset, supported: problems.length === 0 && operators.every((verdict) => verdict.supported), operators, problems, matrix: TENSORRT_MATRIX_SOURCE };
}

/**
 * Whether TensorRT 10's ONNX parser can import the model at `path`, checked against the support
 * matrix of onnx-tensorrt without a GPU or TensorRT: what `endosynth info --check-tensorrt` prints.
 * @throws {@link endosynth!FileFormatError | FileFormatError} when the file cannot be read or is not an ONNX model.
 */
export function checkTensorRTSupport(path: string): TensorRTSupportReport {
  return checkGraphForTensorRT(readOnnxGraph(path));
}
