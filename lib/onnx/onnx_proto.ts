/**
 * The ONNX protobuf messages the writer emits (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto, ValueInfoProto), with field numbers from onnx/onnx.proto. Only the fields endosynth
 * uses are encoded.
 * @module
 */
import type { DType } from "../ndarray/ndarray.js";
import { ProtoWriter } from "./protobuf.js";

/** The IR version of ONNX 1.12 (opset 17). */
export const IR_VERSION = 8;
/** The default-domain opset every graph is written for (LayerNormalization needs 17). */
export const OPSET_VERSION = 17;

/** TensorProto.DataType of each dtype. */
export const ONNX_DATA_TYPE: Readonly<Record<DType, number>> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
};

/** One dimension of a value's shape: a size, or a symbolic name such as `"H"`. */
export type Dim = number | string;

/** An attribute value with its ONNX type made explicit (a JS number cannot tell INT from FLOAT). */
export type Attribute =
  | { type: "int"; value: number }
  | { type: "float"; value: number }
  | { type: "string"; value: string }
  | { type: "ints"; value: readonly number[] }
  | { type: "floats"; value: readonly number[] }
  | { type: "tensor"; value: TensorSpec };

/** A graph node as written. */
export interface NodeSpec {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: Readonly<Record<string, Attribute>>;
}

/** Where a tensor's bytes are: inside the model file, or in the external data file. */
export type TensorLocation =
  | { kind: "embedded"; bytes: Uint8Array }
  | { kind: "external"; location: string; offset: number; length: number };

/** A tensor (initializer or attribute value) as written. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: TensorLocation;
}

/** A graph input or output. */
export interface ValueInfoSpec {
  name: string;
  dtype: DType;
  /** Omitted (unknown rank) when undefined. */
  shape: readonly Dim[] | undefined;
}

/** The whole model as written. */
export interface ModelSpec {
  graphName: string;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata: Readonly<Record<string, string>>;
  nodes: readonly NodeSpec[];
  initializers: Iterable<TensorSpec>;
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
}

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;
const DATA_LOCATION_EXTERNAL = 1;

/** Encodes a TensorProto. */
export function encodeTensor(tensor: TensorSpec): ProtoWriter {
  const message = new ProtoWriter()
    .packedVarints(1, tensor.shape)
    .varint(2, ONNX_DATA_TYPE[tensor.dtype])
    .string(8, tensor.name);
  const { data } = tensor;
  if (data.kind === "embedded") return message.bytes(9, data.bytes);
  const entries: [string, string][] = [
    ["location", data.location],
    ["offset", String(data.offset)],
    ["length", String(data.length)],
  ];
  for (const [key, value] of entries) message.message(13, new ProtoWriter().string(1, key).string(2, value));
  return message.varint(14, DATA_LOCATION_EXTERNAL);
}

function encodeAttribute(name: string, attribute: Attribute): ProtoWriter {
  const message = new ProtoWriter().string(1, name).varint(20, ATTRIBUTE_TYPE[attribute.type]);
  switch (attribute.type) {
    case "float":
      return message.float(2, attribute.value);
    case "int":
      return message.varint(3, attribute.value);
    case "string":
      return message.string(4, attribute.value);
    case "tensor":
      return message.message(5, encodeTensor(attribute.value));
    case "floats":
      return message.packedFloats(7, attribute.value);
    case "ints":
      return message.packedVarints(8, attribute.value);
  }
}

function encodeNode(node: NodeSpec): ProtoWriter {
  const message = new ProtoWriter();
  for (const input of node.inputs) message.string(1, input);
  for (const output of node.outputs) message.string(2, output);
  message.string(3, node.name).string(4, node.opType);
  for (const [name, attribute] of Object.entries(node.attributes)) message.message(5, encodeAttribute(name, attribute));
  return message;
}

function encodeValueInfo(value: ValueInfoSpec): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, ONNX_DATA_TYPE[value.dtype]);
  if (value.shape) {
    const shape = new ProtoWriter();
    for (const dim of value.shape) {
      shape.message(1, typeof dim === "number" ? new ProtoWriter().varint(1, dim) : new ProtoWriter().string(2, dim));
    }
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, value.name).message(2, new ProtoWriter().message(1, tensorType));
}

/** Encodes a ModelProto; tensor bytes stay referenced, see {@link ProtoWriter}. */
export function encodeModel(model: ModelSpec): ProtoWriter {
  const graph = new ProtoWriter();
  for (const node of model.nodes) graph.message(1, encodeNode(node));
  graph.string(2, model.graphName);
  for (const tensor of model.initializers) graph.message(5, encodeTensor(tensor));
  for (const input of model.inputs) graph.message(11, encodeValueInfo(input));
  for (const output of model.outputs) graph.message(12, encodeValueInfo(output));

  const message = new ProtoWriter()
    .varint(1, IR_VERSION)
    .string(2, model.producerName)
    .string(3, model.producerVersion);
  if (model.docString) message.string(6, model.docString);
  message.message(7, graph).message(8, new ProtoWriter().string(1, "").varint(2, OPSET_VERSION));
  for (const [key, value] of Object.entries(model.metadata)) {
    message.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return message;
}
