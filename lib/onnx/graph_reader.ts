/**
 * Reads the graph of an ONNX model file: its operators with their attributes, inputs and outputs,
 * and the element type of every tensor, straight from the protobuf wire format (field numbers of
 * onnx/onnx.proto). Weights are skipped where they lie (inline bytes are never decoded, external
 * data files are never opened), so reading costs the file's size once. Subgraphs (`If`, `Loop`)
 * are noted on their node, not read.
 * @module
 */
import { statSync } from "node:fs";
import { EndosynthError, FileFormatError } from "../errors.js";
import { readFileBytes } from "../io/read_file.js";
import { protoFields, readVarint, type ProtoField } from "./protobuf_reader.js";

/** One attribute's value: numbers and strings as such; a tensor by its element type; a subgraph by its presence. */
export type AttributeValue = number | string | number[] | string[] | { tensorType: number } | { subgraph: true };

/** One operator of the graph. */
export interface GraphNode {
  opType: string;
  /** "" for the default ONNX domain. */
  domain: string;
  name: string;
  /** Input names; "" for an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

/** A model's graph, as {@link readOnnxGraph} reads it. */
export interface OnnxGraph {
  file: string;
  /** The opset version imported for each domain ("" is the default domain). */
  opsets: Record<string, number>;
  nodes: GraphNode[];
  /** Element types (TensorProto.DataType) of the initializers, by name. */
  initializers: Map<string, number>;
  /** Element types of the graph's inputs and outputs, by name. */
  inputs: Map<string, number>;
  outputs: Map<string, number>;
  /** Element types the file records for intermediate values (ONNX shape inference writes them). */
  valueInfo: Map<string, number>;
  /** The shapes the file records (inputs, outputs, value info): a size, or a symbolic name such as `"H"`. */
  shapes: Map<string, (number | string)[]>;
}

/** ONNX's TensorProto.DataType names, by number. */
export const ONNX_ELEMENT_TYPES: Readonly<Record<number, string>> = {
  1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16",
  11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN",
  18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4",
};

/** Protobuf caps a message at 2 GiB: a larger file is not an ONNX model. */
const MAX_MODEL_BYTES = 2 ** 31;

const decoder = new TextDecoder();
const text = (field: ProtoField): string => (field.wireType === 2 ? decoder.decode(field.value) : "");
const integer = (field: ProtoField): number => (field.wireType === 0 ? Number(BigInt.asIntN(64, field.value)) : NaN);
const message = (field: ProtoField): Uint8Array => (field.wireType === 2 ? field.value : new Uint8Array(0));

function float(field: ProtoField): number {
  if (field.wireType !== 5) return NaN;
  return new DataView(field.value.buffer, field.value.byteOffset, 4).getFloat32(0, true);
}

/** A packed or unpacked repeated varint field's values. */
function integers(field: ProtoField): number[] {
  if (field.wireType === 0) return [integer(field)];
  const packed = message(field);
  const values: number[] = [];
  for (let offset = 0; offset < packed.length; ) {
    const varint = readVarint(packed, offset);
    values.push(Number(BigInt.asIntN(64, varint.value)));
    offset = varint.end;
  }
  return values;
}

function tensorType(bytes: Uint8Array): number {
  for (const field of protoFields(bytes)) if (field.number === 2) return integer(field);
  return 0;
}

function tensorName(bytes: Uint8Array): string {
  for (const field of protoFields(bytes)) if (field.number === 8) return text(field);
  return "";
}

function readAttribute(bytes: Uint8Array): [string, AttributeValue | undefined] {
  let name = "";
  let value: AttributeValue | undefined;
  const ints: number[] = [];
  const strings: string[] = [];
  for (const field of protoFields(bytes)) {
    if (field.number === 1) name = text(field);
    else if (field.number === 2) value = float(field);
    else if (field.number === 3) value = integer(field);
    else if (field.number === 4) value = text(field);
    else if (field.number === 5) value = { tensorType: tensorType(message(field)) };
    else if (field.number === 6 || field.number === 11) value = { subgraph: true };
    else if (field.number === 8) ints.push(...integers(field));
    else if (field.number === 9) strings.push(text(field));
  }
  if (ints.length > 0) value = ints;
  if (strings.length > 0) value = strings;
  return [name, value];
}

function readNode(bytes: Uint8Array): GraphNode {
  const node: GraphNode = { opType: "", domain: "", name: "", inputs: [], outputs: [], attributes: {} };
  for (const field of protoFields(bytes)) {
    if (field.number === 1) node.inputs.push(text(field));
    else if (field.number === 2) node.outputs.push(text(field));
    else if (field.number === 3) node.name = text(field);
    else if (field.number === 4) node.opType = text(field);
    else if (field.number === 7) node.domain = text(field) === "ai.onnx" ? "" : text(field);
    else if (field.number === 5) {
      const [name, value] = readAttribute(message(field));
      if (value !== undefined) node.attributes[name] = value;
    }
  }
  return node;
}

/** A TensorShapeProto's dimensions: sizes, symbolic names, or "" for a dimension it leaves unknown. */
function readShape(bytes: Uint8Array): (number | string)[] {
  const dims: (number | string)[] = [];
  for (const dim of protoFields(bytes)) {
    if (dim.number !== 1) continue;
    let value: number | string = "";
    for (const field of protoFields(message(dim))) {
      if (field.number === 1) value = integer(field);
      else if (field.number === 2) value = text(field);
    }
    dims.push(value);
  }
  return dims;
}

/** A ValueInfoProto's name, element type (0 when it has no tensor type) and shape (when recorded). */
function readValueInfo(bytes: Uint8Array): { name: string; elementType: number; shape?: (number | string)[] } {
  const info: { name: string; elementType: number; shape?: (number | string)[] } = { name: "", elementType: 0 };
  for (const field of protoFields(bytes)) {
    if (field.number === 1) info.name = text(field);
    else if (field.number === 2) {
      for (const type of protoFields(message(field))) {
        if (type.number !== 1) continue;
        for (const tensor of protoFields(message(type))) {
          if (tensor.number === 1) info.elementType = integer(tensor);
          else if (tensor.number === 2) info.shape = readShape(message(tensor));
        }
      }
    }
  }
  return info;
}

function readGraph(bytes: Uint8Array, graph: OnnxGraph): void {
  for (const field of protoFields(bytes)) {
    if (field.number === 1) graph.nodes.push(readNode(message(field)));
    else if (field.number === 5) graph.initializers.set(tensorName(message(field)), tensorType(message(field)));
    else if (field.number === 11 || field.number === 12 || field.number === 13) {
      const info = readValueInfo(message(field));
      const into = field.number === 11 ? graph.inputs : field.number === 12 ? graph.outputs : graph.valueInfo;
      into.set(info.name, info.elementType);
      if (info.shape) graph.shapes.set(info.name, info.shape);
    }
  }
}

function readOpset(bytes: Uint8Array): [string, number] {
  let domain = "";
  let version = 0;
  for (const field of protoFields(bytes)) {
    if (field.number === 1) domain = text(field);
    else if (field.number === 2) version = integer(field);
  }
  return [domain === "ai.onnx" ? "" : domain, version];
}

/**
 * Reads the graph of the ONNX model at `path`.
 * @throws {@link endosynth!FileFormatError | FileFormatError} when the file cannot be read, or is not an ONNX model (malformed protobuf, no graph, over 2 GiB).
 */
export function readOnnxGraph(path: string): OnnxGraph {
  const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  if (size >= MAX_MODEL_BYTES) throw new FileFormatError(`${path} is over 2 GiB: protobuf cannot hold an ONNX model that large`, { file: path });
  const bytes = readFileBytes(path);
  const graph: OnnxGraph = { file: path, opsets: {}, nodes: [], initializers: new Map(), inputs: new Map(), outputs: new Map(), valueInfo: new Map(), shapes: new Map() };
  let hasGraph = false;
  try {
    for (const field of protoFields(bytes)) {
      if (field.number === 8) {
        const [domain, version] = readOpset(message(field));
        graph.opsets[domain] = version;
      } else if (field.number === 7 && field.wireType === 2) {
        hasGraph = true;
        readGraph(field.value, graph);
      }
    }
  } catch (error) {
    if (error instanceof EndosynthError && error.file !== undefined) throw error;
    throw new FileFormatError(`${path} is not an ONNX model: ${(error as Error).message}`, { file: path, cause: error });
  }
  if (!hasGraph) throw new FileFormatError(`${path} is not an ONNX model: it has no graph`, { file: path });
  return graph;
}

const BOOLEAN_RESULTS = new Set(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf"]);
const INDEX_RESULTS = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin"]);

/** The element type of a node's first output, from the ONNX operator definitions of the common operators. */
function outputType(node: GraphNode, types: ReadonlyMap<string, number>): number | undefined {
  const attribute = (name: string) => node.attributes[name];
  if (node.opType === "Cast") return attribute("to") as number;
  if (BOOLEAN_RESULTS.has(node.opType)) return 9;
  if (INDEX_RESULTS.has(node.opType)) return 7;
  if (node.opType === "Where") return types.get(node.inputs[1]);
  if (node.opType === "Constant" || node.opType === "ConstantOfShape") {
    const value = attribute("value");
    if (typeof value === "object" && value !== null && "tensorType" in value) return value.tensorType;
    if (attribute("value_float") !== undefined || attribute("value_floats") !== undefined || node.opType === "ConstantOfShape") return 1;
    if (attribute("value_int") !== undefined || attribute("value_ints") !== undefined) return 7;
    return undefined;
  }
  return node.inputs.map((input) => types.get(input)).find((type) => type !== undefined && type !== 0);
}

/**
 * The element type of every tensor of the graph: recorded ones (inputs, initializers, value info)
 * first, the rest inferred node by node in graph order. A tensor missing from the map is one whose
 * type could not be told.
 */
export function elementTypesOf(graph: OnnxGraph): Map<string, number> {
  const types = new Map<string, number>([...graph.inputs, ...graph.initializers, ...graph.valueInfo, ...graph.outputs]);
  for (const node of graph.nodes) {
    const type = types.get(node.outputs[0]) ?? outputType(node, types);
    if (type !== undefined && node.outputs[0]) types.set(node.outputs[0], type);
  }
  return types;
}
