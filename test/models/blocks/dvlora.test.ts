import test from "ava";
import { foldDvLora, type DvLoraTensors } from "../../../lib/models/blocks/dvlora.js";
import type { NdArray } from "../../../lib/ndarray/ndarray.js";
import { randomFloats } from "../../onnx/helpers.js";

function tensor(shape: number[], seed: number): NdArray<"float32"> {
  return { data: randomFloats(shape.reduce((a, b) => a * b, 1), seed), shape, dtype: "float32" };
}

function dvLinear(outFeatures: number, inFeatures: number, rank: number): DvLoraTensors {
  return {
    weight: tensor([outFeatures, inFeatures], 1),
    loraA: tensor([rank, inFeatures], 2),
    loraB: tensor([outFeatures, rank], 3),
    loraU: tensor([rank, 1], 4),
    loraV: tensor([outFeatures, 1], 5),
  };
}

/** DVLinear.forward without bias, as the reference writes it: x Wᵀ + (x (A*U)ᵀ)(B*V)ᵀ * scaling, in double. */
function referenceForward(t: DvLoraTensors, x: Float32Array, scaling: number): Float64Array {
  const [outFeatures, inFeatures] = t.weight.shape;
  const rank = t.loraA.shape[0];
  const afterA = Array.from({ length: rank }, (_, k) => {
    let sum = 0;
    for (let i = 0; i < inFeatures; i++) sum += x[i] * t.loraA.data[k * inFeatures + i] * t.loraU.data[k];
    return sum;
  });
  return Float64Array.from({ length: outFeatures }, (_, o) => {
    let base = 0;
    for (let i = 0; i < inFeatures; i++) base += x[i] * t.weight.data[o * inFeatures + i];
    let update = 0;
    for (let k = 0; k < rank; k++) update += afterA[k] * t.loraB.data[o * rank + k] * t.loraV.data[o];
    return base + update * scaling;
  });
}

for (const scaling of [1, 0.5]) {
  test(`the folded weight computes DVLinear's forward (scaling ${scaling})`, (t) => {
    const layer = dvLinear(24, 40, 4);
    const folded = foldDvLora(layer, scaling);
    t.deepEqual(folded.shape, [24, 40]);
    for (const seed of [11, 12, 13]) {
      const x = randomFloats(40, seed);
      const expected = referenceForward(layer, x, scaling);
      for (let o = 0; o < 24; o++) {
        let actual = 0;
        for (let i = 0; i < 40; i++) actual += x[i] * folded.data[o * 40 + i];
        // Only the float32 rounding of each folded weight separates the two.
        t.true(Math.abs(actual - expected[o]) < 1e-5, `output ${o}: ${actual} vs ${expected[o]}`);
      }
    }
  });
}

test("the low-rank update is not a no-op: the folded weight differs from W, and U, V matter", (t) => {
  const layer = dvLinear(8, 6, 2);
  const folded = foldDvLora(layer, 1);
  const unscaled = foldDvLora({ ...layer, loraU: { ...layer.loraU, data: new Float32Array(2).fill(1) }, loraV: { ...layer.loraV, data: new Float32Array(8).fill(1) } }, 1);
  const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => Math.abs(v - b[i]) > 1e-3);
  t.true(differs(folded.data, layer.weight.data));
  t.true(differs(folded.data, unscaled.data));
});

test("zero lora_B folds to W exactly", (t) => {
  const layer = dvLinear(8, 6, 2);
  const folded = foldDvLora({ ...layer, loraB: { data: new Float32Array(16), shape: [8, 2], dtype: "float32" } }, 1);
  t.deepEqual(folded.data, layer.weight.data);
});

test("tensors that do not fit one another are refused, naming every shape", (t) => {
  const layer = dvLinear(8, 6, 2);
  const error = t.throws(() => foldDvLora({ ...layer, loraV: tensor([6, 1], 9) }, 1), { instanceOf: RangeError });
  t.regex(error.message, /do not fit/);
  t.regex(error.message, /loraV \(6, 1\)/);
  t.regex(error.message, /weight \(8, 6\)/);
});
