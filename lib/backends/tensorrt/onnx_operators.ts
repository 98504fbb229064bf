/**
 * TensorRT's ONNX parser support matrix, as data: which operators it imports, for which tensor
 * types, under which restrictions. Transcribed from onnx/onnx-tensorrt `docs/operators.md` at
 * commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c (the ONNX-TensorRT 10.1 GA release: TensorRT
 * 10.x, opsets 9 to 20; later 10.x releases add operators, none removes one), with one typo
 * corrected (ConstantOfShape's "INF64" is INT64). UINT8 is supported only as a network input or
 * output; INT8, INT4 and FP8 only through quantization.
 * @module
 */

/** The tensor types the matrix names. */
export type TensorRTType = "FP32" | "FP16" | "BF16" | "INT32" | "INT64" | "INT8" | "INT4" | "FP8" | "UINT8" | "BOOL";

/** One operator the parser imports. */
export interface OperatorSupport {
  /** The types of its data tensors it accepts. */
  readonly types: readonly TensorRTType[];
  /** The matrix's restrictions, in its words. */
  readonly restrictions?: string;
}

/** Where a support matrix comes from. */
export interface SupportMatrixSource {
  /** The repository it is published in. */
  readonly repository: string;
  /** Its file there. */
  readonly file: string;
  /** The commit it was read at. */
  readonly commit: string;
  /** The release that commit is. */
  readonly release: string;
  /** The lowest and highest default-domain opset the parser imports. */
  readonly opsets: readonly [number, number];
}

/** Where this matrix comes from. */
export const TENSORRT_MATRIX_SOURCE: SupportMatrixSource = {
  repository: "https://github.com/onnx/onnx-tensorrt",
  file: "docs/operators.md",
  commit: "96e781103cfc4adf4a6bb557e94bac8e693f6f4c",
  release: "ONNX-TensorRT 10.1 GA (TensorRT 10.x)",
  opsets: [9, 20],
};

/** Every operator the matrix marks supported. */
export const SUPPORTED_OPERATORS: Readonly<Record<string, OperatorSupport>> = {
  Abs: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Acos: { types: ["FP32", "FP16", "BF16"] },
  Acosh: { types: ["FP32", "FP16", "BF16"] },
  Add: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  And: { types: ["BOOL"] },
  ArgMax: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  ArgMin: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Asin: { types: ["FP32", "FP16", "BF16"] },
  Asinh: { types: ["FP32", "FP16", "BF16"] },
  Atan: { types: ["FP32", "FP16", "BF16"] },
  Atanh: { types: ["FP32", "FP16", "BF16"] },
  AveragePool: { types: ["FP32", "FP16", "BF16"], restrictions: "2D or 3D Pooling only. `dilations` must be empty or all ones" },
  BatchNormalization: { types: ["FP32", "FP16", "BF16"] },
  Cast: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "UINT8", "BOOL"] },
  CastLike: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "UINT8", "BOOL"] },
  Ceil: { types: ["FP32", "FP16", "BF16"] },
  Celu: { types: ["FP32", "FP16", "BF16"] },
  Clip: { types: ["FP32", "FP16", "BF16"] },
  Concat: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Constant: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`sparse_value`, `value_string`, and `value_strings` attributes are unsupported." },
  ConstantOfShape: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Conv: { types: ["FP32", "FP16", "BF16"] },
  ConvTranspose: { types: ["FP32", "FP16", "BF16"] },
  Cos: { types: ["FP32", "FP16", "BF16"] },
  Cosh: { types: ["FP32", "FP16", "BF16"] },
  CumSum: { types: ["FP32", "FP16", "BF16"], restrictions: "`axis` must be an initializer" },
  DeformConv: { types: ["FP32", "FP16"], restrictions: "`input` must have 1D or 2D spatial dimensions. `pads` for the beginning and end along each spatial axis must be the same" },
  DepthToSpace: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  DequantizeLinear: { types: ["INT8", "FP8", "INT4"], restrictions: "`x_zero_point` must be zero" },
  Div: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Dropout: { types: ["FP32", "FP16", "BF16"], restrictions: "`is_traning` must be an initializer and evaluate to False." },
  Einsum: { types: ["FP32", "FP16", "BF16"] },
  Elu: { types: ["FP32", "FP16", "BF16"] },
  Equal: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Erf: { types: ["FP32", "FP16", "BF16"] },
  Exp: { types: ["FP32", "FP16", "BF16"] },
  Expand: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  EyeLike: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`input` must have static dimensions" },
  Flatten: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Floor: { types: ["FP32", "FP16", "BF16"] },
  Gather: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  GatherElements: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  GatherND: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Gelu: { types: ["FP32", "FP16", "BF16", "INT8", "INT32", "INT64"] },
  Gemm: { types: ["FP32", "FP16", "BF16"] },
  GlobalAveragePool: { types: ["FP32", "FP16", "BF16"] },
  GlobalLpPool: { types: ["FP32", "FP16", "BF16"] },
  GlobalMaxPool: { types: ["FP32", "FP16", "BF16"] },
  Greater: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  GreaterOrEqual: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  GridSample: { types: ["FP32", "FP16"], restrictions: "Input must be 4D input." },
  GroupNormalization: { types: ["FP32", "FP16", "BF16"] },
  GRU: { types: ["FP32", "FP16", "BF16"], restrictions: "For bidirectional GRUs, activation functions must be the same for both the forward and reverse pass" },
  HardSigmoid: { types: ["FP32", "FP16", "BF16"] },
  HardSwish: { types: ["FP32", "FP16", "BF16"] },
  Hardmax: { types: ["FP32", "FP16", "BF16"], restrictions: "`axis` dimension of input must be a build-time constant" },
  Identity: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  If: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "Output tensors of the two conditional branches must have the same rank and must have different names" },
  ImageScaler: { types: ["FP32", "FP16", "BF16"] },
  InstanceNormalization: { types: ["FP32", "FP16", "BF16"] },
  IsInf: { types: ["FP32", "FP16", "BF16"] },
  IsNaN: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  LayerNormalization: { types: ["FP32", "FP16", "BF16"], restrictions: "Only the first output `Y` is supported." },
  LeakyRelu: { types: ["FP32", "FP16", "BF16"] },
  Less: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  LessOrEqual: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Log: { types: ["FP32", "FP16", "BF16"] },
  LogSoftmax: { types: ["FP32", "FP16", "BF16"] },
  Loop: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "Scan output length cannot be dynamic. The shape of Loop carried dependencies must be the same across all loop iterations." },
  LRN: { types: ["FP32", "FP16", "BF16"] },
  LSTM: { types: ["FP32", "FP16", "BF16"], restrictions: "For bidirectional LSTMs, activation functions must be the same for both the forward and reverse pass. `input_forget` attribute must be 0. `layout` attribute must be 0." },
  LpNormalization: { types: ["FP32", "FP16", "BF16"] },
  LpPool: { types: ["FP32", "FP16", "BF16"], restrictions: "`dilations` must be empty or all ones" },
  MatMul: { types: ["FP32", "FP16", "BF16"] },
  Max: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  MaxPool: { types: ["FP32", "FP16", "BF16"], restrictions: "2D or 3D pooling only. `Indices` output tensor unsupported. `dilations` must be empty or all ones" },
  Mean: { types: ["FP32", "FP16", "BF16", "FP8", "INT32", "INT64"] },
  MeanVarianceNormalization: { types: ["FP32", "FP16", "BF16"] },
  Min: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Mish: { types: ["FP32", "FP16"] },
  Mod: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Mul: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Neg: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  NonMaxSuppression: { types: ["FP32", "FP16"] },
  NonZero: { types: ["FP32", "FP16"] },
  Not: { types: ["BOOL"] },
  OneHot: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`depth` must be a build-time constant" },
  Or: { types: ["BOOL"] },
  Pad: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ParametricSoftplus: { types: ["FP32", "FP16", "BF16"] },
  Pow: { types: ["FP32", "FP16", "BF16"] },
  PRelu: { types: ["FP32", "FP16", "BF16"] },
  QuantizeLinear: { types: ["FP32", "FP16", "BF16"], restrictions: "`y_zero_point` must be 0" },
  RandomNormal: { types: ["FP32", "FP16", "BF16"], restrictions: "`seed` value is ignored by TensorRT" },
  RandomNormalLike: { types: ["FP32", "FP16", "BF16"], restrictions: "`seed` value is ignored by TensorRT" },
  RandomUniform: { types: ["FP32", "FP16", "BF16"], restrictions: "`seed` value is ignored by TensorRT" },
  RandomUniformLike: { types: ["FP32", "FP16", "BF16"], restrictions: "`seed` value is ignored by TensorRT" },
  Range: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Reciprocal: { types: ["FP32", "FP16", "BF16"] },
  ReduceL1: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceL2: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceLogSum: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceLogSumExp: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceMax: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceMean: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceMin: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceProd: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceSum: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  ReduceSumSquare: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`axes` must be an initializer" },
  Relu: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Reshape: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Resize: { types: ["FP32", "FP16", "BF16"], restrictions: "Supported resize transformation modes: `half_pixel`, `pytorch_half_pixel`, `tf_half_pixel_for_nn`, `asymmetric`, and `align_corners`. Supported resize modes: `nearest`, `linear`. Supported nearest modes: `floor`, `ceil`, `round_prefer_floor`, `round_prefer_ceil`. Supported aspect ratio policy: `stretch`. When `scales` is a tensor input, `axes` must be an iota vector of length rank(input). Antialiasing is not supported." },
  ReverseSequence: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  RNN: { types: ["FP32", "FP16", "BF16"], restrictions: "For bidirectional RNNs, activation functions must be the same for both the forward and reverse pass" },
  RoiAlign: { types: ["FP32", "FP16"] },
  Round: { types: ["FP32", "FP16", "BF16"] },
  ScaledTanh: { types: ["FP32", "FP16", "BF16"] },
  Scan: { types: ["FP32", "FP16", "BF16"] },
  Scatter: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  ScatterElements: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  ScatterND: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`reduction` is not supported" },
  Selu: { types: ["FP32", "FP16", "BF16"] },
  Shape: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Shrink: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Sigmoid: { types: ["FP32", "FP16", "BF16"] },
  Sign: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Sin: { types: ["FP32", "FP16", "BF16"] },
  Sinh: { types: ["FP32", "FP16", "BF16"] },
  Size: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Slice: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`axes` must be an initializer" },
  Softmax: { types: ["FP32", "FP16", "BF16"] },
  Softplus: { types: ["FP32", "FP16", "BF16"] },
  Softsign: { types: ["FP32", "FP16", "BF16"] },
  SpaceToDepth: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Split: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Sqrt: { types: ["FP32", "FP16", "BF16"] },
  Squeeze: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`axes` must be an initializer" },
  Sub: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Sum: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"] },
  Tan: { types: ["FP32", "FP16", "BF16"] },
  Tanh: { types: ["FP32", "FP16", "BF16"] },
  ThresholdedRelu: { types: ["FP32", "FP16", "BF16"] },
  Tile: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  TopK: { types: ["FP32", "FP16", "BF16", "INT32", "INT64"], restrictions: "`sorted` must be 1. `K` input must be less than 3840." },
  Transpose: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Trilu: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Unsqueeze: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"], restrictions: "`axes` must be a constant tensor" },
  Upsample: { types: ["FP32", "FP16", "BF16"] },
  Where: { types: ["FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"] },
  Xor: { types: ["BOOL"] },
};

/** The operators the matrix marks unsupported. */
export const UNSUPPORTED_OPERATORS: ReadonlySet<string> = new Set([
  "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
  "BlackmanWindow", "Col2Im", "CenterCropPad", "Compress", "ConcatFromSequence", "ConvInteger", "DFT", "Det",
  "DynamicQuantizeLinear", "HammingWindow", "HannWindow", "ImageDecoder", "MatMulInteger", "MaxRoiPool",
  "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
  "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "STFT",
  "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
  "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat", "StringNormalizer",
  "StringSplit", "TfIdfVectorizer", "Unique",
]);
