/**
 * The float16 pass: rewrites the network body of a {@link Graph} (from the pre-processed input to
 * the raw network output) to run in float16, for GPU runtimes that build an fp16 engine from the
 * types the ONNX states (TensorRT >= 11 builds strongly typed networks only). Everything outside
 * that region (the uint8 input, the pre-processing taps and resize, the conversion to metres, the
 * float32 output) is left exactly as it was, so the fp16 and fp32 models are drop-in replacements
 * for each other.
 *
 * Inside the region:
 * - float32 initializers become float16 (rounded to nearest even), except those that feed the ops
 *   kept in float32; an initializer also used outside the region gets a float16 twin;
 * - every float32 activation becomes float16: ONNX infers intermediate types, so the ops stay
 *   as they are, with a Cast where a float32 value enters the region and one where a float16
 *   value leaves it;
 * - the numerically fragile ops ({@link FLOAT32_OPS}: LayerNormalization, Softmax, reductions,
 *   Pow) run in float32 between a Cast to float32 and a Cast back: explicit Casts rather than
 *   LayerNormalization's `stash_type`, because TensorRT 11 dropped the compute-precision override
 *   of its normalization layer (its precision follows the input type);
 * - integer and boolean values (shapes, indices, masks) are untouched.
 *
 * The float16 weights are not materialised by the pass: each one is encoded when the writer reads
 * it, as it streams that tensor to disk, so converting never holds a second copy of the weights.
 *
 * @example
 * ```ts
 * const g = new Graph("model");
 * spec.build(g, weights, { channelOrder: "rgb" }); // marks the "preprocessed" and "raw" stages
 * const half = toFloat16(g, { input: g.stage("preprocessed")!, output: g.stage("raw")! });
 * await writeOnnx(half, "model-fp16.onnx");
 * ```
 * @module
 */
import { CheckpointError, InputError } from "../errors.js";
import { encodeFloat16 } from "../ndarray/float16.js";
import type { NdArray } from "../ndarray/ndarray.js";
import type { Graph, Initializer, Value } from "./graph.js";
import { ONNX_DATA_TYPE, type NodeSpec } from "./onnx_proto.js";
import type { OnnxGraph } from "./writer.js";

/** The network body the pass converts: every node between `input` and `output`. */
export interface Float16Region {
  /** The body's input (e.g. the pre-processed image); the nodes computing it stay float32. */
  input: Value;
  /** The body's output (e.g. the raw network output); the nodes reading it stay float32. */
  output: Value;
}

/** What {@link toFloat16} did. */
export interface Float16Summary {
  /** Nodes of the region that run in float16. */
  float16Nodes: number;
  /** Nodes of the region kept in float32, by op type. */
  float32Nodes: Readonly<Record<string, number>>;
  /** Cast nodes added at the region's edges and around the float32 ops. */
  casts: number;
  /** Initializers stored in float16 (twins included). */
  float16Initializers: number;
}

/** A graph after {@link toFloat16}: what the writer needs, and what the pass did. */
export interface Float16Graph extends OnnxGraph {
  readonly summary: Float16Summary;
}

/**
 * Ops kept in float32 inside the region: normalisations and reductions (sums of many terms or of
 * squares, which lose precision or overflow in float16), softmax (exponentials) and Pow.
 */
export const FLOAT32_OPS: readonly string[] = [
  "LayerNormalization",
  "InstanceNormalization",
  "Softmax",
  "LogSoftmax",
  "ReduceMean",
  "ReduceSum",
  "ReduceSumSquare",
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSumExp",
  "Pow",
];

/** Every input of the op has the element type T that becomes float16. */
const ALL = "all";
/** The op accepts any element type there (Cast, Shape): inputs pass as they are. */
const ANY = "any";

/**
 * The ops the pass runs in float16, with the inputs whose type is the op's float type T. Other
 * inputs keep their type (e.g. Resize's `scales` are float32 whatever X is; shapes and indices are
 * integers). An op missing here that touches a float32 value inside the region is refused rather
 * than guessed at.
 */
const FLOAT16_OPS: Readonly<Record<string, typeof ALL | typeof ANY | readonly number[]>> = {
  Add: ALL, Sub: ALL, Mul: ALL, Div: ALL, Max: ALL, Min: ALL, Sum: ALL, Clip: ALL,
  Abs: ALL, Neg: ALL, Relu: ALL, Sigmoid: ALL, Tanh: ALL, Erf: ALL, Exp: ALL, Log: ALL, Sqrt: ALL,
  Reciprocal: ALL, Floor: ALL, Ceil: ALL, Identity: ALL,
  Equal: ALL, Less: ALL, Greater: ALL, Where: [1, 2],
  Conv: ALL, ConvTranspose: ALL, Gemm: ALL, MatMul: ALL,
  Concat: ALL, Transpose: [0], Reshape: [0], Flatten: [0], Squeeze: [0], Unsqueeze: [0], Slice: [0],
  Gather: [0], Expand: [0], Split: [0], Tile: [0], Pad: [0, 2], Resize: [0],
  Cast: ANY, Shape: ANY,
};

const FLOAT16 = ONNX_DATA_TYPE.float16;
const FLOAT32 = ONNX_DATA_TYPE.float32;

/** The indices of the nodes computing `value`, and of everything they read, transitively. */
function ancestors(nodes: readonly NodeSpec[], producers: ReadonlyMap<string, number>, value: string): Set<number> {
  const found = new Set<number>();
  const pending = [value];
  while (pending.length > 0) {
    const index = producers.get(pending.pop()!);
    if (index === undefined || found.has(index)) continue;
    found.add(index);
    pending.push(...nodes[index].inputs.filter((name) => name !== ""));
  }
  return found;
}

/** The region's nodes: what computes `output`, less what computes `input`. */
function regionNodes(graph: Graph, producers: ReadonlyMap<string, number>, region: Float16Region): Set<number> {
  const { nodes } = graph;
  const before = ancestors(nodes, producers, region.input.name);
  const nodesOfRegion = new Set([...ancestors(nodes, producers, region.output.name)].filter((i) => !before.has(i)));
  const reads = [...nodesOfRegion].some((i) => nodes[i].inputs.includes(region.input.name));
  if (nodesOfRegion.size === 0 || !reads) {
    throw new InputError(
      `The float16 region of the ONNX graph ${graph.name} is empty: ${region.output.name} is not computed from ${region.input.name}`,
      { key: region.output.name },
    );
  }
  return nodesOfRegion;
}

/** Checks that every float16 value converts without overflowing to infinity. */
function assertFinite(name: string, values: Float32Array, bits: Uint16Array): void {
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7fff) === 0x7c00 && Number.isFinite(values[i])) {
      throw new CheckpointError(
        `The weight ${name} holds ${values[i]}, beyond float16's range (±65504): convert this checkpoint with precision "fp32"`,
        { key: name },
      );
    }
  }
}

/**
 * A float16 view of float32 weights, encoded each time its data is read: the writer reads each
 * initializer once, as it streams it, so the float16 copy of one tensor lives only while that
 * tensor is written.
 */
function lazyFloat16(name: string, source: NdArray): NdArray<"float16"> {
  const values = source.data as Float32Array;
  return {
    shape: source.shape,
    dtype: "float16",
    get data(): Uint16Array {
      const bits = encodeFloat16(values);
      assertFinite(name, values, bits);
      return bits;
    },
  };
}

/** Whether input `index` of `node` takes the op's float type (true), keeps its own type (false), or takes any type. */
function wantsFloat16(node: NodeSpec, index: number): boolean | typeof ANY {
  const inputs = FLOAT16_OPS[node.opType];
  if (inputs === ANY) return ANY;
  return inputs === ALL || (inputs !== undefined && inputs.includes(index));
}

const isKeptFloat32 = (node: NodeSpec): boolean => FLOAT32_OPS.includes(node.opType);

/** One run of the pass over a graph: what is where, and the nodes written so far. */
class Float16Rewrite {
  readonly #graph: Graph;
  readonly #producers = new Map<string, number>();
  readonly #inRegion: Set<number>;
  readonly #taken: Set<string>;
  /** The float16 name of each initializer the region reads as float16. */
  readonly #float16Initializers = new Map<string, string>();
  /** The float32 results of the ops kept in float32, by the original output name (which the float16 value keeps). */
  readonly #float32Results = new Map<string, string>();
  /** Casts added, by target type and source value. */
  readonly #casts = { [FLOAT16]: new Map<string, string>(), [FLOAT32]: new Map<string, string>() };
  readonly nodes: NodeSpec[] = [];
  readonly initializers: Initializer[] = [];

  constructor(graph: Graph, region: Float16Region) {
    this.#graph = graph;
    graph.nodes.forEach((node, i) => node.outputs.forEach((name) => this.#producers.set(name, i)));
    this.#inRegion = regionNodes(graph, this.#producers, region);
    this.#taken = new Set([...this.#producers.keys(), ...graph.initializers.map((i) => i.name), ...graph.inputs.map((v) => v.name), ...graph.nodes.map((n) => n.name)]);
  }

  /** Refuses ops the pass does not know and graph outputs inside the region. */
  assertConvertible(): void {
    for (const index of this.#inRegion) {
      const node = this.#graph.nodes[index];
      const touchesFloat32 = [...node.inputs, ...node.outputs].some((name) => this.#isFloat32(name));
      if (touchesFloat32 && !isKeptFloat32(node) && FLOAT16_OPS[node.opType] === undefined) {
        throw new InputError(`The float16 pass does not know the op ${node.opType} (node ${node.name}): add it to FLOAT16_OPS or FLOAT32_OPS`, { key: node.name });
      }
    }
    for (const output of this.#graph.outputs) {
      if (this.#inside(output.name) && this.#isFloat32(output.name)) {
        throw new InputError(`The graph output ${output.name} lies inside the float16 region: outputs must stay float32`, { key: output.name });
      }
    }
  }

  /**
   * Lists the initializers, those the region reads as float16 in float16: converted in place when
   * that is their only use, else beside a float16 twin.
   */
  convertInitializers(): void {
    const float16Uses = new Set<string>();
    const otherUses = new Set<string>();
    const initializers = new Set(this.#graph.initializers.map((i) => i.name));
    this.#graph.nodes.forEach((node, index) => {
      node.inputs.forEach((name, i) => {
        if (!initializers.has(name) || !this.#isFloat32(name)) return;
        const float16 = this.#inRegion.has(index) && !isKeptFloat32(node) && wantsFloat16(node, i) === true;
        (float16 ? float16Uses : otherUses).add(name);
      });
    });
    for (const init of this.#graph.initializers) {
      if (!float16Uses.has(init.name)) {
        this.initializers.push(init);
        continue;
      }
      const shared = otherUses.has(init.name);
      const name = shared ? this.#fresh(`${init.name}/fp16`) : init.name;
      if (shared) this.initializers.push(init);
      this.initializers.push({ name, array: lazyFloat16(init.name, init.array) });
      this.#float16Initializers.set(init.name, name);
    }
  }

  /** Rewrites every node (in order), adding casts just before their first reader; returns the summary. */
  rewriteNodes(): Float16Summary {
    let float16Nodes = 0;
    const float32Nodes: Record<string, number> = {};
    this.#graph.nodes.forEach((node, index) => {
      if (!this.#inRegion.has(index)) {
        this.nodes.push({ ...node, inputs: node.inputs.map((name) => this.#asFloat32(name)) });
      } else if (isKeptFloat32(node)) {
        float32Nodes[node.opType] = (float32Nodes[node.opType] ?? 0) + 1;
        this.#keepFloat32(node);
      } else {
        float16Nodes++;
        this.#toFloat16(node);
      }
    });
    const casts = this.#casts[FLOAT16].size + this.#casts[FLOAT32].size;
    return { float16Nodes, float32Nodes, casts, float16Initializers: this.#float16Initializers.size };
  }

  /** An op kept in float32: float32 inputs, and its float32 results under new names. */
  #keepFloat32(node: NodeSpec): void {
    const outputs = node.outputs.map((name) => (this.#isFloat32(name) ? this.#fresh(`${name}/fp32`) : name));
    this.nodes.push({ ...node, inputs: node.inputs.map((name) => this.#asFloat32(name)), outputs });
    node.outputs.forEach((name, i) => outputs[i] !== name && this.#float32Results.set(name, outputs[i]));
  }

  /** An op of the float16 body: float16 inputs where it takes its float type, and Casts to float32 made Casts to float16. */
  #toFloat16(node: NodeSpec): void {
    const inputs = node.inputs.map((name, i) => {
      const wanted = wantsFloat16(node, i);
      // Cast and Shape read any type: a float32 result is as good as its float16 cast.
      if (wanted === ANY) return this.#float32Results.get(name) ?? name;
      return wanted ? this.#asFloat16(name) : this.#asFloat32(name);
    });
    const { to } = node.attributes;
    const castsToFloat32 = node.opType === "Cast" && to?.type === "int" && to.value === FLOAT32;
    this.nodes.push({ ...node, inputs, attributes: castsToFloat32 ? { ...node.attributes, to: { type: "int", value: FLOAT16 } } : node.attributes });
  }

  /** `name` as a reader outside the float16 body, or inside it at a float32 input, must see it. */
  #asFloat32(name: string): string {
    const result = this.#float32Results.get(name);
    if (result !== undefined) return result;
    return this.#isFloat32(name) && this.#inside(name) ? this.#cast(name, FLOAT32) : name;
  }

  /** `name` as a float16 op of the body must see it. */
  #asFloat16(name: string): string {
    if (!this.#isFloat32(name)) return name;
    const initializer = this.#float16Initializers.get(name);
    if (initializer !== undefined) return initializer;
    const result = this.#float32Results.get(name);
    // The float16 value of a float32 op's result keeps the original name its readers use.
    if (result !== undefined) return this.#cast(result, FLOAT16, name);
    return this.#inside(name) ? name : this.#cast(name, FLOAT16);
  }

  /** The Cast of `name` to `to` (added once, before its first reader), named `target` or after its source. */
  #cast(name: string, to: number, target?: string): string {
    const known = this.#casts[to].get(name);
    if (known !== undefined) return known;
    const output = target ?? this.#fresh(`${name}/${to === FLOAT16 ? "fp16" : "fp32"}`);
    this.nodes.push({ name: this.#fresh(`${output}_node`), opType: "Cast", inputs: [name], outputs: [output], attributes: { to: { type: "int", value: to } } });
    this.#casts[to].set(name, output);
    return output;
  }

  #isFloat32(name: string): boolean {
    return name !== "" && this.#graph.valueNamed(name)?.dtype === "float32";
  }

  /** Whether a node of the region computes `name`. */
  #inside(name: string): boolean {
    return this.#inRegion.has(this.#producers.get(name) ?? -1);
  }

  #fresh(base: string): string {
    let name = base;
    for (let i = 1; this.#taken.has(name); i++) name = `${base}_${i}`;
    this.#taken.add(name);
    return name;
  }
}

/**
 * Rewrites the region of `graph` between `region.input` and `region.output` to run in float16
 * (see the module notes). `graph` itself is not changed; the result shares its weights.
 * @throws {@link endosynth!InputError | InputError} when the region is empty, or holds an op the pass does not know that
 * touches float32 values, or a graph output lies inside it.
 * @throws {@link endosynth!CheckpointError | CheckpointError} (when the result is written) for a weight beyond float16's range.
 */
export function toFloat16(graph: Graph, region: Float16Region): Float16Graph {
  const rewrite = new Float16Rewrite(graph, region);
  rewrite.assertConvertible();
  rewrite.convertInitializers();
  const summary = rewrite.rewriteNodes();
  return { name: graph.name, nodes: rewrite.nodes, initializers: rewrite.initializers, inputs: graph.inputs, outputs: graph.outputs, summary };
}
