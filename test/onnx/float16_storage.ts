/**
 * Float16 storage for ONNX Runtime's CPU provider, for accuracy tests. That provider has float16
 * kernels for few ops (on x86: data movement and LayerNormalization): it runs the others in
 * float32 between Casts it inserts, and drops the float32 → float16 → float32 round trips between
 * two such ops, so a float16 model's activations are mostly never rounded. A GPU stores every one
 * of them in float16. This rewrite makes ONNX Runtime round them too: each float16 result goes
 * through an Identity, which has a float16 kernel, so its Cast to float16 stays. Run the result
 * with graph optimisations disabled (they would remove the Identities).
 */
import { ONNX_DATA_TYPE, type NodeSpec } from "../../lib/onnx/onnx_proto.js";
import type { OnnxGraph } from "../../lib/onnx/writer.js";
import { ELEM_TYPE, elementTypes, type ReadModel } from "./onnx_reader.js";

/** The graph as the reader describes a written model, for {@link elementTypes}. */
function described(graph: OnnxGraph): ReadModel {
  return {
    nodes: graph.nodes.map((node) => ({
      ...node,
      inputs: [...node.inputs],
      outputs: [...node.outputs],
      ints: Object.fromEntries(Object.entries(node.attributes).flatMap(([name, a]) => (a.type === "int" ? [[name, a.value]] : []))),
    })),
    initializers: graph.initializers.map((i) => ({ name: i.name, elemType: ONNX_DATA_TYPE[i.array.dtype], dims: [...i.array.shape] })),
    inputs: graph.inputs.map((v) => ({ name: v.name, elemType: ONNX_DATA_TYPE[v.dtype] })),
    outputs: graph.outputs.map((v) => ({ name: v.name, elemType: ONNX_DATA_TYPE[v.dtype] })),
    metadata: {},
  };
}

/** `graph` with every float16 node result (Casts aside) passed through an Identity. */
export function withFloat16Storage(graph: OnnxGraph): OnnxGraph {
  const types = elementTypes(described(graph));
  const nodes: NodeSpec[] = [];
  for (const node of graph.nodes) {
    const stored = node.opType === "Cast" ? [] : node.outputs.filter((name) => types.get(name) === ELEM_TYPE.float16);
    nodes.push({ ...node, outputs: node.outputs.map((name) => (stored.includes(name) ? `${name}#computed` : name)) });
    for (const name of stored) nodes.push({ name: `${name}#stored`, opType: "Identity", inputs: [`${name}#computed`], outputs: [name], attributes: {} });
  }
  return { ...graph, nodes };
}
