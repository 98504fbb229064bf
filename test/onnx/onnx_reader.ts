/**
 * A minimal ONNX reader for tests: decodes the parts of a written ModelProto that tests assert on
 * (nodes, initializers' types and shapes, graph inputs and outputs, metadata), straight from the
 * protobuf wire format, so assertions are about the file, not about the writer's data structures.
 * Field numbers from onnx/onnx.proto.
 */
import { readFileSync } from "node:fs";
import { protoFields as fields, readVarint } from "../../lib/onnx/protobuf_reader.js";

/** The values of a packed repeated varint field (e.g. `repeated int64 dims`), as unsigned 64-bit. */
export function packedVarints(bytes: Uint8Array): bigint[] {
  const values: bigint[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const varint = readVarint(bytes, offset);
    values.push(varint.value);
    offset = varint.end;
  }
  return values;
}

/** TensorProto.DataType values tests name. */
export const ELEM_TYPE = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10 } as const;

export interface ReadNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes (e.g. Cast's `to`). */
  ints: Record<string, number>;
}

export interface ReadTensor {
  name: string;
  elemType: number;
  dims: number[];
}

export interface ReadValueInfo {
  name: string;
  elemType: number;
}

export interface ReadModel {
  nodes: ReadNode[];
  initializers: ReadTensor[];
  inputs: ReadValueInfo[];
  outputs: ReadValueInfo[];
  metadata: Record<string, string>;
}

const text = (value: bigint | Uint8Array): string => Buffer.from(value as Uint8Array).toString("utf8");
const int = (value: bigint | Uint8Array): number => Number(BigInt.asIntN(64, value as bigint));

function readNode(bytes: Uint8Array): ReadNode {
  const node: ReadNode = { name: "", opType: "", inputs: [], outputs: [], ints: {} };
  for (const f of fields(bytes)) {
    if (f.number === 1) node.inputs.push(text(f.value));
    else if (f.number === 2) node.outputs.push(text(f.value));
    else if (f.number === 3) node.name = text(f.value);
    else if (f.number === 4) node.opType = text(f.value);
    else if (f.number === 5) {
      let name = "";
      let value: number | undefined;
      for (const a of fields(f.value as Uint8Array)) {
        if (a.number === 1) name = text(a.value);
        else if (a.number === 3) value = int(a.value);
      }
      if (value !== undefined) node.ints[name] = value;
    }
  }
  return node;
}

function readTensor(bytes: Uint8Array): ReadTensor {
  const tensor: ReadTensor = { name: "", elemType: 0, dims: [] };
  for (const f of fields(bytes)) {
    if (f.number === 1) {
      if (f.wireType === 2) tensor.dims.push(...packedVarints(f.value).map(int));
      else tensor.dims.push(int(f.value));
    } else if (f.number === 2) tensor.elemType = int(f.value);
    else if (f.number === 8) tensor.name = text(f.value);
  }
  return tensor;
}

function readValueInfo(bytes: Uint8Array): ReadValueInfo {
  const info: ReadValueInfo = { name: "", elemType: 0 };
  for (const f of fields(bytes)) {
    if (f.number === 1) info.name = text(f.value);
    else if (f.number === 2) {
      for (const type of fields(f.value as Uint8Array)) {
        if (type.number !== 1) continue;
        for (const tensorType of fields(type.value as Uint8Array)) if (tensorType.number === 1) info.elemType = int(tensorType.value);
      }
    }
  }
  return info;
}

/** Reads the model file at `path` (its external data is not opened). */
export function readOnnx(path: string): ReadModel {
  const model: ReadModel = { nodes: [], initializers: [], inputs: [], outputs: [], metadata: {} };
  for (const f of fields(readFileSync(path))) {
    if (f.number === 14) {
      let key = "";
      let value = "";
      for (const entry of fields(f.value as Uint8Array)) {
        if (entry.number === 1) key = text(entry.value);
        else if (entry.number === 2) value = text(entry.value);
      }
      model.metadata[key] = value;
    }
    if (f.number !== 7) continue;
    for (const g of fields(f.value as Uint8Array)) {
      if (g.number === 1) model.nodes.push(readNode(g.value as Uint8Array));
      else if (g.number === 5) model.initializers.push(readTensor(g.value as Uint8Array));
      else if (g.number === 11) model.inputs.push(readValueInfo(g.value as Uint8Array));
      else if (g.number === 12) model.outputs.push(readValueInfo(g.value as Uint8Array));
    }
  }
  return model;
}

/**
 * The element type of every value of the model, inferred node by node as ONNX does for the ops
 * endosynth writes: Cast gives its `to`, Shape int64, comparisons bool, Where its second input's
 * type, every other op its first typed input's.
 */
export function elementTypes(model: ReadModel): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of [...model.inputs, ...model.initializers]) types.set(v.name, v.elemType);
  for (const node of model.nodes) {
    let type: number | undefined;
    if (node.opType === "Cast") type = node.ints.to;
    else if (node.opType === "Shape") type = ELEM_TYPE.int64;
    else if (["Equal", "Less", "Greater"].includes(node.opType)) type = ELEM_TYPE.bool;
    else if (node.opType === "Where") type = types.get(node.inputs[1]);
    else type = node.inputs.map((name) => types.get(name)).find((t) => t !== undefined);
    if (type === undefined) throw new Error(`cannot infer the type of ${node.outputs[0]} (${node.opType})`);
    for (const output of node.outputs) types.set(output, type);
  }
  return types;
}
