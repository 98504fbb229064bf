/**
 * A small ONNX graph builder: values, initializers, scoped names, and one typed method per op the
 * model builders use (opset 17). Value names are generated from the current scope
 * (`pretrained/blocks.3/attn/MatMul_41`), shapes are tracked where that is cheap so builders can
 * assert what they build, and initializers keep a reference to their NdArray (no copy) until the
 * writer streams them to disk.
 *
 * @example
 * ```ts
 * const g = new Graph("affine");
 * const x = g.input("x", "float32", ["N", 4]);
 * const w = g.initializer(ndarray(new Float32Array(12), [3, 4]), "fc.weight");
 * g.output(g.gemm(x, w, undefined, { transB: true }), "y", ["N", 3]);
 * await writeOnnx(g, "affine.onnx");
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { size, type DType, type NdArray } from "../ndarray/ndarray.js";
import { ONNX_DATA_TYPE, type Attribute, type Dim, type NodeSpec, type ValueInfoSpec } from "./onnx_proto.js";
import {
  broadcastShapes,
  convShape,
  convTransposeShape,
  formatDims,
  matMulShape,
  normaliseAxis,
  reshapeShape,
  sliceShape,
  UNKNOWN_DIM,
  type Shape,
} from "./shapes.js";

/** A tensor flowing through the graph: a graph input, an initializer or a node output. */
export interface Value {
  /** Unique name in the graph. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Static shape where known (dims may be symbolic names), else `undefined`. */
  readonly shape: Shape;
}

/** An initializer: a named NdArray the writer stores in the model (or its external data file). */
export interface Initializer {
  /** Its name in the graph (a state-dict key for weights). */
  readonly name: string;
  /** Its data, referenced until written. */
  readonly array: NdArray;
}

/** An operand of an elementwise op: a value, or a number made a scalar constant of the other operand's dtype. */
export type Operand = Value | number;

/** Options of {@link Graph.conv}; defaults are ONNX's (stride 1, no padding, no dilation, one group). */
export interface ConvOptions {
  /** Stride per spatial axis. */
  strides?: readonly number[];
  /** `[begin..., end...]` per spatial axis, as ONNX orders them. */
  pads?: readonly number[];
  /** Dilation per spatial axis. */
  dilations?: readonly number[];
  /** Channel groups (the weight holds C / group input channels). */
  group?: number;
}

/** Options of {@link Graph.convTranspose}. */
export interface ConvTransposeOptions extends ConvOptions {
  /** Extra size added at the end of each spatial axis (PyTorch's `output_padding`). */
  outputPadding?: readonly number[];
}

/** Options of {@link Graph.gemm}: `Y = alpha * A' B' + beta * C`. */
export interface GemmOptions {
  /** Use Aᵀ. */
  transA?: boolean;
  /** Use Bᵀ (a PyTorch Linear weight [out, in] as stored). */
  transB?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Scale of C (default 1). */
  beta?: number;
}

/** Options of {@link Graph.resize}. */
export interface ResizeOptions {
  /** Output sizes of every axis (static, or a 1-D int64 value). Exactly one of `sizes`/`scales`. */
  sizes?: readonly number[] | Value;
  /** Scale of every axis (static). */
  scales?: readonly number[];
  /** Interpolation. */
  mode: "nearest" | "linear" | "cubic";
  /** How output coordinates map to input ones (`align_corners` is PyTorch's align_corners=True). */
  coordinateTransformationMode:
    | "half_pixel"
    | "pytorch_half_pixel"
    | "align_corners"
    | "asymmetric"
    | "tf_crop_and_resize";
  /** The cubic kernel's A (ONNX default -0.75). */
  cubicCoeffA?: number;
  /** Renormalise weights over taps inside the input (ONNX default false). */
  excludeOutside?: boolean;
  /** Rounding of `nearest` mode. */
  nearestMode?: "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil";
}

const ints = (value: readonly number[]): Attribute => ({ type: "ints", value });
const int = (value: number): Attribute => ({ type: "int", value });
const float = (value: number): Attribute => ({ type: "float", value });
const string = (value: string): Attribute => ({ type: "string", value });

/** The typed array holding a constant's values in `dtype`. */
function constantData(values: readonly number[], dtype: DType): NdArray["data"] {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(v));
    case "int32":
      return Int32Array.from(values);
    case "uint8":
    case "bool":
      return Uint8Array.from(values);
    default:
      throw new InputError(`Constants of dtype ${dtype} are not supported`);
  }
}

/** An ONNX graph under construction. */
export class Graph {
  /** The graph's name, written into the model. */
  readonly name: string;
  readonly #nodes: NodeSpec[] = [];
  readonly #initializers = new Map<string, Initializer>();
  readonly #inputs: ValueInfoSpec[] = [];
  readonly #outputs: ValueInfoSpec[] = [];
  readonly #names = new Set<string>();
  readonly #values = new Map<string, Value>();
  readonly #stages = new Map<string, Value>();
  readonly #constants = new Map<string, Value>();
  readonly #scopes: string[] = [];
  #counter = 0;

  constructor(name = "endosynth") {
    this.name = name;
  }

  /** The nodes, in topological order (the order they were added). */
  get nodes(): readonly NodeSpec[] {
    return this.#nodes;
  }

  /** The initializers, in the order they were added. */
  get initializers(): readonly Initializer[] {
    return [...this.#initializers.values()];
  }

  /** The graph inputs. */
  get inputs(): readonly ValueInfoSpec[] {
    return this.#inputs;
  }

  /** The graph outputs. */
  get outputs(): readonly ValueInfoSpec[] {
    return this.#outputs;
  }

  /** The value named `name` (input, initializer or node output), if the graph has one. */
  valueNamed(name: string): Value | undefined {
    return this.#values.get(name);
  }

  /**
   * Records `value` as the named stage of the model (e.g. `"preprocessed"`, the network input, and
   * `"raw"`, the network output), so that passes over the whole graph know where the network body
   * starts and ends. Marks add nothing to the written model.
   */
  markStage(name: string, value: Value): void {
    if (!this.#values.has(value.name)) throw new InputError(`The stage ${JSON.stringify(name)} is not a value of the ONNX graph ${this.name}`, { key: name });
    this.#stages.set(name, value);
  }

  /** The value marked as stage `name` (see {@link Graph.markStage}), if any. */
  stage(name: string): Value | undefined {
    return this.#stages.get(name);
  }

  /** Runs `build` with `scope` appended to the prefix of every generated name (scopes nest). */
  scoped<T>(scope: string, build: () => T): T {
    this.#scopes.push(scope);
    try {
      return build();
    } finally {
      this.#scopes.pop();
    }
  }

  /** Declares a graph input. Dims may be numbers or symbolic names. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    this.#claim(name);
    this.#inputs.push({ name, dtype, shape: [...shape] });
    return this.#record({ name, dtype, shape: [...shape] });
  }

  /**
   * Declares `value` a graph output named `name` (through an Identity when it has another name),
   * with `shape` (default: the tracked one; unknown rank when that is unknown).
   */
  output(value: Value, name: string, shape: readonly Dim[] | undefined = value.shape): void {
    const named = value.name === name ? value : this.#emit("Identity", [value], {}, [{ dtype: value.dtype, shape: value.shape }], name)[0];
    this.#outputs.push({ name: named.name, dtype: value.dtype, shape: shape && [...shape] });
  }

  /** Adds an initializer that references `array` (no copy); `name` defaults to a scoped generated one. */
  initializer(array: NdArray, name?: string): Value {
    const unique = name ?? this.#fresh("weight");
    this.#claim(unique);
    this.#initializers.set(unique, { name: unique, array });
    return this.#record({ name: unique, dtype: array.dtype, shape: [...array.shape] });
  }

  /** A small constant (scalar when `shape` is omitted and one value is given), shared between identical uses. */
  constant(values: number | readonly number[], dtype: DType = "float32", shape?: readonly number[]): Value {
    const list = typeof values === "number" ? [values] : values;
    const dims = shape ?? (typeof values === "number" ? [] : [list.length]);
    if (size(dims) !== list.length) throw new RangeError(`constant of shape [${dims}] needs ${size(dims)} values, got ${list.length}`);
    const key = `${dtype}[${dims}]${list.map((v) => Object.is(v, -0) ? "-0" : String(v)).join(",")}`;
    const existing = this.#constants.get(key);
    if (existing) return existing;
    const name = `const_${this.#constants.size}`;
    this.#claim(name);
    this.#initializers.set(name, { name, array: { data: constantData(list, dtype), shape: dims, dtype } });
    const value = this.#record({ name, dtype, shape: dims });
    this.#constants.set(key, value);
    return value;
  }

  /**
   * Adds a node of any op (the escape hatch for ops without a typed helper). `undefined` inputs are
   * written as ONNX's empty "optional input" name. Returns one value per entry of `outputs`.
   */
  node(
    opType: string,
    inputs: readonly (Value | undefined)[],
    attributes: Readonly<Record<string, Attribute>>,
    outputs: readonly { dtype: DType; shape: Shape }[],
  ): Value[] {
    return this.#emit(opType, inputs, attributes, outputs);
  }

  // ---- elementwise -------------------------------------------------------------------------

  /** `a + b` with broadcasting. */
  add(a: Operand, b: Operand): Value {
    return this.#binary("Add", a, b);
  }

  /** `a - b` with broadcasting. */
  sub(a: Operand, b: Operand): Value {
    return this.#binary("Sub", a, b);
  }

  /** `a * b` with broadcasting. */
  mul(a: Operand, b: Operand): Value {
    return this.#binary("Mul", a, b);
  }

  /** `a / b` with broadcasting. */
  div(a: Operand, b: Operand): Value {
    return this.#binary("Div", a, b);
  }

  /** Elementwise maximum. */
  max(...values: Operand[]): Value {
    return this.#variadic("Max", values);
  }

  /** Elementwise minimum. */
  min(...values: Operand[]): Value {
    return this.#variadic("Min", values);
  }

  /** `a == b` (bool). */
  equal(a: Operand, b: Operand): Value {
    const [x, y] = this.#operands(a, b);
    return this.#emit("Equal", [x, y], {}, [{ dtype: "bool", shape: broadcastShapes([x.shape, y.shape]) }])[0];
  }

  /** `condition ? a : b` with broadcasting. */
  where(condition: Value, a: Operand, b: Operand): Value {
    const [x, y] = this.#operands(a, b);
    const shape = broadcastShapes([condition.shape, x.shape, y.shape]);
    return this.#emit("Where", [condition, x, y], {}, [{ dtype: x.dtype, shape }])[0];
  }

  /** `-x`. */
  neg(x: Value): Value {
    return this.#unary("Neg", x);
  }

  /** `max(x, 0)`. */
  relu(x: Value): Value {
    return this.#unary("Relu", x);
  }

  /** `1 / (1 + exp(-x))`. */
  sigmoid(x: Value): Value {
    return this.#unary("Sigmoid", x);
  }

  /** Natural logarithm. */
  log(x: Value): Value {
    return this.#unary("Log", x);
  }

  /** `exp(x)`. */
  exp(x: Value): Value {
    return this.#unary("Exp", x);
  }

  /** Square root. */
  sqrt(x: Value): Value {
    return this.#unary("Sqrt", x);
  }

  /** Gauss error function. */
  erf(x: Value): Value {
    return this.#unary("Erf", x);
  }

  /** Round towards minus infinity. */
  floor(x: Value): Value {
    return this.#unary("Floor", x);
  }

  /** `tanh(x)`. */
  tanh(x: Value): Value {
    return this.#unary("Tanh", x);
  }

  /**
   * Exact GELU, `x * 0.5 * (1 + erf(x / sqrt(2)))` as PyTorch's `nn.GELU()` computes it (not the
   * tanh approximation). Written as the Div/Erf/Add/Mul/Mul pattern ONNX Runtime fuses into one kernel.
   */
  gelu(x: Value): Value {
    const erf = this.erf(this.div(x, Math.SQRT2));
    return this.mul(this.mul(x, this.add(erf, 1)), 0.5);
  }

  /** Clamps to `[min, max]` (either bound optional; bounds are scalars of x's dtype). */
  clip(x: Value, min?: Operand, max?: Operand): Value {
    const bound = (b: Operand | undefined): Value | undefined => (b === undefined ? undefined : typeof b === "number" ? this.constant(b, x.dtype) : b);
    return this.#emit("Clip", [x, bound(min), bound(max)], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
  }

  /** Converts the element type. */
  cast(x: Value, dtype: DType): Value {
    if (x.dtype === dtype) return x;
    return this.#emit("Cast", [x], { to: int(ONNX_DATA_TYPE[dtype]) }, [{ dtype, shape: x.shape }])[0];
  }

  // ---- linear algebra ----------------------------------------------------------------------

  /** NumPy-style matrix product. */
  matMul(a: Value, b: Value): Value {
    return this.#emit("MatMul", [a, b], {}, [{ dtype: a.dtype, shape: matMulShape(a.shape, b.shape) }])[0];
  }

  /** `alpha * A' B' + beta * C` on 2-D A and B (PyTorch's Linear is `gemm(x, W, b, { transB: true })`). */
  gemm(a: Value, b: Value, c?: Value, options: GemmOptions = {}): Value {
    const { transA = false, transB = false, alpha = 1, beta = 1 } = options;
    const rows = a.shape ? a.shape[transA ? 1 : 0] : undefined;
    const cols = b.shape ? b.shape[transB ? 0 : 1] : undefined;
    const inner = [a.shape?.[transA ? 0 : 1], b.shape?.[transB ? 1 : 0]];
    if (typeof inner[0] === "number" && typeof inner[1] === "number" && inner[0] !== inner[1]) {
      throw new RangeError(`Gemm of ${formatDims(a.shape)} by ${formatDims(b.shape)} (transB ${transB}): inner dimensions differ`);
    }
    const attributes: Record<string, Attribute> = {};
    if (transA) attributes.transA = int(1);
    if (transB) attributes.transB = int(1);
    if (alpha !== 1) attributes.alpha = float(alpha);
    if (beta !== 1) attributes.beta = float(beta);
    const shape = rows === undefined || cols === undefined ? undefined : [rows, cols];
    return this.#emit("Gemm", c ? [a, b, c] : [a, b], attributes, [{ dtype: a.dtype, shape }])[0];
  }

  /** N-D convolution; weight [M, C/group, ...kernel], optional bias [M]. */
  conv(x: Value, weight: Value, bias?: Value, options: ConvOptions = {}): Value {
    const spatial = (weight.shape?.length ?? 4) - 2;
    const strides = options.strides ?? Array<number>(spatial).fill(1);
    const pads = options.pads ?? Array<number>(2 * spatial).fill(0);
    const dilations = options.dilations ?? Array<number>(spatial).fill(1);
    const attributes: Record<string, Attribute> = {
      kernel_shape: ints((weight.shape ?? []).slice(2) as number[]),
      strides: ints(strides),
      pads: ints(pads),
      dilations: ints(dilations),
      group: int(options.group ?? 1),
    };
    const shape = convShape(x.shape, weight.shape, strides, pads, dilations);
    return this.#emit("Conv", bias ? [x, weight, bias] : [x, weight], attributes, [{ dtype: x.dtype, shape }])[0];
  }

  /** N-D transposed convolution; weight [C, M/group, ...kernel] (PyTorch's layout), optional bias [M]. */
  convTranspose(x: Value, weight: Value, bias?: Value, options: ConvTransposeOptions = {}): Value {
    const spatial = (weight.shape?.length ?? 4) - 2;
    const strides = options.strides ?? Array<number>(spatial).fill(1);
    const pads = options.pads ?? Array<number>(2 * spatial).fill(0);
    const outputPadding = options.outputPadding ?? Array<number>(spatial).fill(0);
    const group = options.group ?? 1;
    const attributes: Record<string, Attribute> = {
      kernel_shape: ints((weight.shape ?? []).slice(2) as number[]),
      strides: ints(strides),
      pads: ints(pads),
      dilations: ints(options.dilations ?? Array<number>(spatial).fill(1)),
      group: int(group),
    };
    if (options.outputPadding) attributes.output_padding = ints(outputPadding);
    const shape = convTransposeShape(x.shape, weight.shape, strides, pads, outputPadding, group);
    return this.#emit("ConvTranspose", bias ? [x, weight, bias] : [x, weight], attributes, [{ dtype: x.dtype, shape }])[0];
  }

  // ---- normalisation -----------------------------------------------------------------------

  /** LayerNormalization (opset 17) over the axes from `axis` to the last. */
  layerNormalization(x: Value, scale: Value, bias: Value | undefined, epsilon: number, axis = -1): Value {
    const inputs = bias ? [x, scale, bias] : [x, scale];
    return this.#emit("LayerNormalization", inputs, { axis: int(axis), epsilon: float(epsilon) }, [{ dtype: x.dtype, shape: x.shape }])[0];
  }

  /** Softmax along one axis. */
  softmax(x: Value, axis = -1): Value {
    return this.#emit("Softmax", [x], { axis: int(axis) }, [{ dtype: x.dtype, shape: x.shape }])[0];
  }

  // ---- shape manipulation ------------------------------------------------------------------

  /** Reshape to a static target (0 keeps the input's dim, -1 is inferred) or to a 1-D int64 value. */
  reshape(x: Value, shape: readonly number[] | Value): Value {
    if (!Array.isArray(shape)) {
      return this.#emit("Reshape", [x, shape as Value], {}, [{ dtype: x.dtype, shape: undefined }])[0];
    }
    const target = shape as readonly number[];
    const inferred = reshapeShape(x.shape, target);
    return this.#emit("Reshape", [x, this.constant(target, "int64")], {}, [{ dtype: x.dtype, shape: inferred }])[0];
  }

  /** Permutes the axes. */
  transpose(x: Value, perm: readonly number[]): Value {
    const shape = x.shape === undefined ? undefined : perm.map((axis) => x.shape![axis]);
    return this.#emit("Transpose", [x], { perm: ints(perm) }, [{ dtype: x.dtype, shape }])[0];
  }

  /** Concatenates along one axis. */
  concat(values: readonly Value[], axis: number): Value {
    let shape: Shape = values[0].shape;
    if (values.every((v) => v.shape !== undefined) && shape) {
      const a = normaliseAxis(axis, shape.length);
      const dims = values.map((v) => v.shape![a]);
      const total = dims.every((d) => typeof d === "number") ? (dims as number[]).reduce((s, d) => s + d, 0) : UNKNOWN_DIM;
      shape = shape.map((d, i) => (i === a ? total : d));
    } else {
      shape = undefined;
    }
    return this.#emit("Concat", values, { axis: int(axis) }, [{ dtype: values[0].dtype, shape }])[0];
  }

  /** Static slice `x[starts:ends:steps]` along `axes`. */
  slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Value {
    const stepList = steps ?? Array<number>(axes.length).fill(1);
    const inputs = [x, this.constant(starts, "int64"), this.constant(ends, "int64"), this.constant(axes, "int64")];
    if (steps) inputs.push(this.constant(stepList, "int64"));
    const shape = sliceShape(x.shape, starts, ends, axes, stepList);
    return this.#emit("Slice", inputs, {}, [{ dtype: x.dtype, shape }])[0];
  }

  /** Gathers entries along `axis` by index (a value, or static indices; a number removes the axis). */
  gather(x: Value, indices: Value | number | readonly number[], axis: number): Value {
    const index = typeof indices === "number" ? this.constant(indices, "int64") : Array.isArray(indices) ? this.constant(indices as number[], "int64") : (indices as Value);
    let shape: Shape;
    if (x.shape && index.shape) {
      const a = normaliseAxis(axis, x.shape.length);
      shape = [...x.shape.slice(0, a), ...index.shape, ...x.shape.slice(a + 1)];
    }
    return this.#emit("Gather", [x, index], { axis: int(axis) }, [{ dtype: x.dtype, shape }])[0];
  }

  /** Inserts size-1 axes. */
  unsqueeze(x: Value, axes: readonly number[]): Value {
    let shape: Shape;
    if (x.shape) {
      const rank = x.shape.length + axes.length;
      const inserted = new Set(axes.map((a) => normaliseAxis(a, rank)));
      const rest = [...x.shape];
      shape = Array.from({ length: rank }, (_, i) => (inserted.has(i) ? 1 : rest.shift()!));
    }
    return this.#emit("Unsqueeze", [x, this.constant(axes, "int64")], {}, [{ dtype: x.dtype, shape }])[0];
  }

  /** Removes size-1 axes. */
  squeeze(x: Value, axes: readonly number[]): Value {
    let shape: Shape;
    if (x.shape) {
      const removed = new Set(axes.map((a) => normaliseAxis(a, x.shape!.length)));
      shape = x.shape.filter((_, i) => !removed.has(i));
    }
    return this.#emit("Squeeze", [x, this.constant(axes, "int64")], {}, [{ dtype: x.dtype, shape }])[0];
  }

  /** Splits along `axis` into parts of the given sizes. */
  split(x: Value, axis: number, sizes: readonly number[]): Value[] {
    const outputs = sizes.map((part) => {
      if (!x.shape) return { dtype: x.dtype, shape: undefined };
      const a = normaliseAxis(axis, x.shape.length);
      return { dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? part : d)) };
    });
    return this.#emit("Split", [x, this.constant(sizes, "int64")], { axis: int(axis) }, outputs);
  }

  /** The shape of `x` as a 1-D int64 value (optionally only axes `start` to `end`). */
  shapeOf(x: Value, start?: number, end?: number): Value {
    const attributes: Record<string, Attribute> = {};
    if (start !== undefined) attributes.start = int(start);
    if (end !== undefined) attributes.end = int(end);
    const rank = x.shape?.length;
    let length: Dim = UNKNOWN_DIM;
    if (rank !== undefined) {
      const from = start === undefined ? 0 : start < 0 ? Math.max(0, start + rank) : Math.min(start, rank);
      const to = end === undefined ? rank : end < 0 ? Math.max(0, end + rank) : Math.min(end, rank);
      length = Math.max(0, to - from);
    }
    return this.#emit("Shape", [x], attributes, [{ dtype: "int64", shape: [length] }])[0];
  }

  /** `[start, start + delta, ...)` up to `limit` (scalars of one dtype). */
  range(start: Operand, limit: Operand, delta: Operand, dtype: DType = "float32"): Value {
    const scalar = (v: Operand): Value => (typeof v === "number" ? this.constant(v, dtype) : v);
    return this.#emit("Range", [scalar(start), scalar(limit), scalar(delta)], {}, [{ dtype, shape: [UNKNOWN_DIM] }])[0];
  }

  /** Resize (opset 13+ semantics: inputs X, roi, scales, sizes). */
  resize(x: Value, options: ResizeOptions): Value {
    const attributes: Record<string, Attribute> = {
      mode: string(options.mode),
      coordinate_transformation_mode: string(options.coordinateTransformationMode),
    };
    if (options.cubicCoeffA !== undefined) attributes.cubic_coeff_a = float(options.cubicCoeffA);
    if (options.excludeOutside !== undefined) attributes.exclude_outside = int(options.excludeOutside ? 1 : 0);
    if (options.nearestMode !== undefined) attributes.nearest_mode = string(options.nearestMode);
    let sizes: Value | undefined;
    let shape: Shape;
    if (options.sizes !== undefined) {
      if (Array.isArray(options.sizes)) {
        const staticSizes = options.sizes as readonly number[];
        shape = staticSizes;
        sizes = this.constant(staticSizes, "int64");
      } else {
        sizes = options.sizes as Value;
        shape = x.shape?.map(() => UNKNOWN_DIM);
      }
    } else if (options.scales !== undefined && x.shape) {
      const scales = options.scales;
      shape = x.shape.map((d, i) => (typeof d === "number" ? Math.floor(d * scales[i]) : UNKNOWN_DIM));
    }
    const scales = options.scales ? this.constant(options.scales, "float32") : undefined;
    return this.#emit("Resize", [x, undefined, scales, sizes], attributes, [{ dtype: x.dtype, shape }])[0];
  }

  // ---- internals ---------------------------------------------------------------------------

  #claim(name: string): void {
    if (this.#names.has(name)) throw new InputError(`The ONNX graph already has a value named ${JSON.stringify(name)}`, { key: name });
    this.#names.add(name);
  }

  #record(value: Value): Value {
    this.#values.set(value.name, value);
    return value;
  }

  #fresh(base: string): string {
    const prefix = this.#scopes.length > 0 ? `${this.#scopes.join("/")}/` : "";
    let name: string;
    do name = `${prefix}${base}_${this.#counter++}`;
    while (this.#names.has(name));
    return name;
  }

  #emit(
    opType: string,
    inputs: readonly (Value | undefined)[],
    attributes: Readonly<Record<string, Attribute>>,
    outputs: readonly { dtype: DType; shape: Shape }[],
    outputName?: string,
  ): Value[] {
    const values: Value[] = outputs.map((output, i) => {
      const name = outputName && i === 0 ? outputName : this.#fresh(opType);
      this.#claim(name);
      return this.#record({ name, dtype: output.dtype, shape: output.shape });
    });
    // Trailing empty optional inputs are dropped: ONNX treats a missing input and "" alike.
    const names = inputs.map((input) => input?.name ?? "");
    while (names.length > 0 && names[names.length - 1] === "") names.pop();
    this.#nodes.push({ name: `${values[0].name}_node`, opType, inputs: names, outputs: values.map((v) => v.name), attributes });
    return values;
  }

  #operands(a: Operand, b: Operand): [Value, Value] {
    if (typeof a === "number" && typeof b === "number") throw new InputError("An elementwise op needs at least one value operand");
    const dtype = typeof a === "number" ? (b as Value).dtype : a.dtype;
    return [typeof a === "number" ? this.constant(a, dtype) : a, typeof b === "number" ? this.constant(b, dtype) : b];
  }

  #binary(opType: string, a: Operand, b: Operand): Value {
    const [x, y] = this.#operands(a, b);
    const shape = broadcastShapes([x.shape, y.shape]);
    if (shape === undefined && x.shape && y.shape && [...x.shape, ...y.shape].every((d) => typeof d === "number")) {
      throw new RangeError(`${opType} of ${formatDims(x.shape)} and ${formatDims(y.shape)}: shapes do not broadcast`);
    }
    return this.#emit(opType, [x, y], {}, [{ dtype: x.dtype, shape }])[0];
  }

  #variadic(opType: string, operands: readonly Operand[]): Value {
    const first = operands.find((o): o is Value => typeof o !== "number");
    if (!first) throw new InputError(`${opType} needs at least one value operand`);
    const values = operands.map((o) => (typeof o === "number" ? this.constant(o, first.dtype) : o));
    return this.#emit(opType, values, {}, [{ dtype: first.dtype, shape: broadcastShapes(values.map((v) => v.shape)) }])[0];
  }

  #unary(opType: string, x: Value): Value {
    return this.#emit(opType, [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
  }
}
