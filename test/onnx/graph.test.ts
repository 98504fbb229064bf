import test from "ava";
import { InputError } from "../../lib/errors.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { Graph } from "../../lib/onnx/graph.js";
import { errorStats, randomFloats, runGraph } from "./helpers.js";

/** erf by its Maclaurin series (exact to double rounding for |x| < 3, all these tests need). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test("gemm with transB and exact GELU computes PyTorch's Linear + nn.GELU()", async (t) => {
  const [rows, inner, cols] = [5, 7, 3];
  const x = randomFloats(rows * inner, 1);
  const w = randomFloats(cols * inner, 2);
  const b = randomFloats(cols, 3);
  const g = new Graph("linear_gelu");
  const input = g.input("x", "float32", ["N", inner]);
  const y = g.gelu(g.gemm(input, g.initializer(ndarray(w, [cols, inner])), g.initializer(ndarray(b, [cols])), { transB: true }));
  g.output(y, "y", ["N", cols]);
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [rows, inner] } });

  const expected = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let z = b[c];
      for (let k = 0; k < inner; k++) z += x[r * inner + k] * w[c * inner + k];
      expected[r * cols + c] = 0.5 * z * (1 + erf(z / Math.SQRT2));
    }
  }
  t.deepEqual(result.y.dims, [rows, cols]);
  t.true(errorStats(result.y.data as Float32Array, expected).maxAbs < 1e-6);
});

test("conv with stride, padding and bias matches a direct convolution", async (t) => {
  const [cin, cout, h, w] = [2, 3, 7, 6];
  const x = randomFloats(cin * h * w, 4);
  const weight = randomFloats(cout * cin * 9, 5);
  const bias = randomFloats(cout, 6);
  const g = new Graph("conv");
  const input = g.input("x", "float32", [1, cin, h, w]);
  const y = g.conv(input, g.initializer(ndarray(weight, [cout, cin, 3, 3])), g.initializer(ndarray(bias, [cout])), { strides: [2, 2], pads: [1, 1, 1, 1] });
  t.deepEqual(y.shape, [1, cout, 4, 3]);
  g.output(y, "y");
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [1, cin, h, w] } });

  const [oh, ow] = [4, 3];
  const expected = new Float64Array(cout * oh * ow);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let sum = bias[o];
        for (let c = 0; c < cin; c++) {
          for (let ki = 0; ki < 3; ki++) {
            for (let kj = 0; kj < 3; kj++) {
              const [yy, xx] = [2 * i - 1 + ki, 2 * j - 1 + kj];
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) sum += x[(c * h + yy) * w + xx] * weight[((o * cin + c) * 3 + ki) * 3 + kj];
            }
          }
        }
        expected[(o * oh + i) * ow + j] = sum;
      }
    }
  }
  t.true(errorStats(result.y.data as Float32Array, expected).maxAbs < 1e-5);
});

test("convTranspose with kernel = stride scatters each input pixel into a block (PyTorch weight layout)", async (t) => {
  const [cin, cout, h, w, k] = [2, 3, 2, 3, 2];
  const x = randomFloats(cin * h * w, 7);
  const weight = randomFloats(cin * cout * k * k, 8);
  const bias = randomFloats(cout, 9);
  const g = new Graph("deconv");
  const input = g.input("x", "float32", [1, cin, h, w]);
  const y = g.convTranspose(input, g.initializer(ndarray(weight, [cin, cout, k, k])), g.initializer(ndarray(bias, [cout])), { strides: [k, k] });
  t.deepEqual(y.shape, [1, cout, h * k, w * k]);
  g.output(y, "y");
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [1, cin, h, w] } });

  const expected = new Float64Array(cout * h * k * w * k);
  for (let o = 0; o < cout; o++) {
    for (let yy = 0; yy < h * k; yy++) {
      for (let xx = 0; xx < w * k; xx++) {
        let sum = bias[o];
        for (let c = 0; c < cin; c++) {
          sum += x[(c * h + Math.floor(yy / k)) * w + Math.floor(xx / k)] * weight[((c * cout + o) * k + (yy % k)) * k + (xx % k)];
        }
        expected[(o * h * k + yy) * w * k + xx] = sum;
      }
    }
  }
  t.true(errorStats(result.y.data as Float32Array, expected).maxAbs < 1e-5);
});

test("layerNormalization and softmax normalise the last axis", async (t) => {
  const [rows, dim] = [4, 6];
  const x = randomFloats(rows * dim, 10).map((v) => 3 * v);
  const scale = randomFloats(dim, 11);
  const shift = randomFloats(dim, 12);
  const g = new Graph("norms");
  const input = g.input("x", "float32", [rows, dim]);
  g.output(g.layerNormalization(input, g.initializer(ndarray(scale, [dim])), g.initializer(ndarray(shift, [dim])), 1e-6), "ln");
  g.output(g.softmax(input, -1), "sm");
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [rows, dim] } });

  const ln = new Float64Array(rows * dim);
  const sm = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
    const mean = row.reduce((a, b) => a + b, 0) / dim;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / dim;
    const max = Math.max(...row);
    const total = row.reduce((a, b) => a + Math.exp(b - max), 0);
    row.forEach((v, c) => {
      ln[r * dim + c] = ((v - mean) / Math.sqrt(variance + 1e-6)) * scale[c] + shift[c];
      sm[r * dim + c] = Math.exp(v - max) / total;
    });
  }
  t.true(errorStats(result.ln.data as Float32Array, ln).maxAbs < 1e-5);
  t.true(errorStats(result.sm.data as Float32Array, sm).maxAbs < 1e-6);
});

test("resize linear with align_corners matches F.interpolate(..., align_corners=True)", async (t) => {
  const [h, w, oh, ow] = [3, 4, 7, 5];
  const x = randomFloats(h * w, 13);
  const g = new Graph("resize");
  const input = g.input("x", "float32", [1, 1, h, w]);
  const y = g.resize(input, { sizes: [1, 1, oh, ow], mode: "linear", coordinateTransformationMode: "align_corners" });
  t.deepEqual(y.shape, [1, 1, oh, ow]);
  g.output(y, "y");
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [1, 1, h, w] } });

  const expected = new Float64Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      const [sy, sx] = [(i * (h - 1)) / (oh - 1), (j * (w - 1)) / (ow - 1)];
      const [y0, x0] = [Math.min(Math.floor(sy), h - 2), Math.min(Math.floor(sx), w - 2)];
      const [ly, lx] = [sy - y0, sx - x0];
      const at = (yy: number, xx: number): number => x[yy * w + xx];
      expected[i * ow + j] = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x0 + 1)) + ly * ((1 - lx) * at(y0 + 1, x0) + lx * at(y0 + 1, x0 + 1));
    }
  }
  t.true(errorStats(result.y.data as Float32Array, expected).maxAbs < 1e-6);
});

test("shape ops move the elements where NumPy would", async (t) => {
  const x = Float32Array.from({ length: 24 }, (_, i) => i); // [2, 3, 4]
  const g = new Graph("shapes");
  const input = g.input("x", "float32", [2, 3, 4]);
  const transposed = g.transpose(input, [2, 0, 1]); // [4, 2, 3]
  t.deepEqual(transposed.shape, [4, 2, 3]);
  const reshaped = g.reshape(transposed, [4, -1]);
  t.deepEqual(reshaped.shape, [4, 6]);
  const sliced = g.slice(input, [1, 0], [3, 2], [1, 2]); // x[:, 1:3, 0:2]
  t.deepEqual(sliced.shape, [2, 2, 2]);
  const gathered = g.gather(input, [2, 0], 2); // x[:, :, [2, 0]]
  t.deepEqual(gathered.shape, [2, 3, 2]);
  const concatenated = g.concat([sliced, gathered], 1);
  t.deepEqual(concatenated.shape, [2, 5, 2]);
  const [first, second] = g.split(input, 2, [1, 3]);
  t.deepEqual(second.shape, [2, 3, 3]);
  g.output(reshaped, "reshaped");
  g.output(concatenated, "concatenated");
  g.output(g.unsqueeze(first, [0]), "unsqueezed");
  const result = await runGraph(t, g, { x: { type: "float32", data: x, dims: [2, 3, 4] } });

  const at = (a: number, b: number, c: number): number => a * 12 + b * 4 + c;
  const reshapedExpected = [];
  for (let c = 0; c < 4; c++) for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) reshapedExpected.push(at(a, b, c));
  t.deepEqual([...(result.reshaped.data as Float32Array)], reshapedExpected);
  const concatExpected = [];
  for (let a = 0; a < 2; a++) {
    for (let b = 1; b < 3; b++) for (const c of [0, 1]) concatExpected.push(at(a, b, c));
    for (let b = 0; b < 3; b++) for (const c of [2, 0]) concatExpected.push(at(a, b, c));
  }
  t.deepEqual([...(result.concatenated.data as Float32Array)], concatExpected);
  t.deepEqual(result.unsqueezed.dims, [1, 2, 3, 1]);
  t.deepEqual([...(result.unsqueezed.data as Float32Array)], [0, 4, 8, 12, 16, 20]);
});

test("shapeOf, cast and dynamic Resize sizes follow the input's run-time shape", async (t) => {
  const g = new Graph("dynamic");
  const image = g.input("image", "uint8", ["H", "W"]);
  const small = g.input("small", "float32", [1, 1, 2, 2]);
  const sizes = g.concat([g.constant([1, 1], "int64"), g.shapeOf(image)], 0);
  const resized = g.resize(small, { sizes, mode: "linear", coordinateTransformationMode: "align_corners" });
  g.output(g.reshape(resized, g.shapeOf(image)), "y", ["H", "W"]);
  g.output(g.cast(image, "float32"), "pixels", ["H", "W"]);
  const result = await runGraph(t, g, {
    image: { type: "uint8", data: Uint8Array.from([0, 255, 7, 9, 11, 13]), dims: [2, 3] },
    small: { type: "float32", data: Float32Array.from([0, 1, 2, 3]), dims: [1, 1, 2, 2] },
  });
  t.deepEqual(result.y.dims, [2, 3]);
  t.deepEqual([...(result.y.data as Float32Array)], [0, 0.5, 1, 2, 2.5, 3]);
  t.deepEqual([...(result.pixels.data as Float32Array)], [0, 255, 7, 9, 11, 13]);
});

test("number operands become scalar constants of the other operand's dtype, shared between uses", (t) => {
  const g = new Graph("constants");
  const x = g.input("x", "float32", [3]);
  g.output(g.add(g.mul(x, 2), 2), "y");
  const constants = g.initializers.filter((i) => i.name.startsWith("const_"));
  t.is(constants.length, 1);
  t.deepEqual(constants[0].array.shape, []);
  t.is(constants[0].array.dtype, "float32");
});

test("scopes prefix generated names", (t) => {
  const g = new Graph("scopes");
  const x = g.input("x", "float32", [1]);
  const y = g.scoped("encoder", () => g.scoped("blocks.0", () => g.relu(x)));
  t.regex(y.name, /^encoder\/blocks\.0\/Relu_\d+$/);
});

test("a second value with the same name is refused", (t) => {
  const g = new Graph("names");
  g.input("x", "float32", [1]);
  const error = t.throws(() => g.initializer(ndarray(new Float32Array(1), [1]), "x"), { instanceOf: InputError });
  t.is(error?.code, "ERR_ENDOSYNTH_INPUT");
  t.regex(error?.message ?? "", /already has a value named "x"/);
});

test("shape tracking catches a MatMul of mismatched matrices at build time", (t) => {
  const g = new Graph("mismatch");
  const a = g.input("a", "float32", [2, 3]);
  const b = g.input("b", "float32", [4, 5]);
  t.throws(() => g.matMul(a, b), { instanceOf: RangeError, message: /MatMul of \[2, 3\] by \[4, 5\]/ });
  t.throws(() => g.add(a, b), { instanceOf: RangeError, message: /do not broadcast/ });
});

test("node() adds any op; an output of unknown shape is declared with unknown rank", async (t) => {
  const g = new Graph("escape");
  const x = g.input("x", "float32", [2, 2]);
  const [y] = g.node("HardSigmoid", [x], { alpha: { type: "float", value: 0.5 }, beta: { type: "float", value: 0.25 } }, [{ dtype: "float32", shape: undefined }]);
  g.output(y, "y");
  t.is(g.outputs[0].shape, undefined);
  const result = await runGraph(t, g, { x: { type: "float32", data: Float32Array.of(-1, 0, 0.5, 4), dims: [2, 2] } });
  t.deepEqual(result.y.dims, [2, 2]);
  t.deepEqual([...(result.y.data as Float32Array)], [0, 0.25, 0.5, 1]);
});

test("elementwise helpers compute what their names say", async (t) => {
  const values = [-2.5, -0.5, 0, 0.25, 1.75, 3];
  const g = new Graph("elementwise");
  const x = g.input("x", "float32", [values.length]);
  const cases: [string, (v: number) => number][] = [
    ["neg", (v) => -v],
    ["relu", (v) => Math.max(v, 0)],
    ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
    ["exp", Math.exp],
    ["tanh", Math.tanh],
    ["floor", Math.floor],
    ["erf", erf],
    ["clip", (v) => Math.min(Math.max(v, -1), 2)],
    ["max", (v) => Math.max(v, 0.5)],
    ["min", (v) => Math.min(v, 0.5)],
    ["where", (v) => (v === 0 ? 7 : v - 1)],
    ["log_sqrt", (v) => Math.log(Math.sqrt(Math.abs(v) + 1))],
  ];
  const built: Record<string, () => ReturnType<Graph["relu"]>> = {
    neg: () => g.neg(x),
    relu: () => g.relu(x),
    sigmoid: () => g.sigmoid(x),
    exp: () => g.exp(x),
    tanh: () => g.tanh(x),
    floor: () => g.floor(x),
    erf: () => g.erf(x),
    clip: () => g.clip(x, -1, 2),
    max: () => g.max(x, 0.5),
    min: () => g.min(x, 0.5),
    where: () => g.where(g.equal(x, 0), 7, g.sub(x, 1)),
    log_sqrt: () => g.log(g.sqrt(g.add(g.max(x, g.neg(x)), 1))),
  };
  for (const [name] of cases) g.output(built[name](), name, [values.length]);
  const result = await runGraph(t, g, { x: { type: "float32", data: Float32Array.from(values), dims: [values.length] } });
  for (const [name, reference] of cases) {
    t.true(errorStats(result[name].data as Float32Array, values.map(reference)).maxAbs < 2e-6, name);
  }
});

test("range over a run-time size, and squeeze", async (t) => {
  const g = new Graph("range");
  const x = g.input("x", "float32", [1, "N", 1]);
  const n = g.gather(g.shapeOf(x), 1, 0);
  const ramp = g.range(0, g.cast(n, "float32"), 0.5);
  g.output(ramp, "ramp", ["M"]);
  const squeezed = g.squeeze(x, [0, 2]);
  t.deepEqual(squeezed.shape, ["N"]);
  g.output(squeezed, "squeezed", ["N"]);
  const result = await runGraph(t, g, { x: { type: "float32", data: Float32Array.of(4, 5, 6), dims: [1, 3, 1] } });
  t.deepEqual([...(result.ramp.data as Float32Array)], [0, 0.5, 1, 1.5, 2, 2.5]);
  t.deepEqual(result.squeezed.dims, [3]);
});
