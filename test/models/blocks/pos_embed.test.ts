import test from "ava";
import { bicubicTaps, interpolatePosEmbed } from "../../../lib/models/blocks/pos_embed.js";

/** Weight of input index `column` in output `row`, adding up taps clamped onto the same index. */
function weightOf(taps: ReturnType<typeof bicubicTaps>, row: number, column: number): number {
  const { indices, weights } = taps[row];
  return indices.reduce((sum, index, k) => (index === column ? sum + weights[k] : sum), 0);
}

// Reference values: PyTorch 1.13 (Debian's python3-torch, CPU), F.interpolate(mode="bicubic",
// scale_factor=(1, s)) applied to one-hot rows, i.e. the kernel's weight matrix, printed as float32.
const TORCH_WEIGHTS_37_TO_53: [number, Record<number, number>][] = [
  [0, { 0: 1.0818397998809814, 1: -0.08183956146240234 }],
  [1, { 0: 0.4491986036300659, 1: 0.6521905660629272, 2: -0.10138893127441406 }],
  [10, { 5: -0.020643234252929688, 6: 0.1805456280708313, 7: 0.9318800568580627, 8: -0.0917825698852539 }],
  [52, { 35: -0.05178689956665039, 36: 1.0517868995666504 }],
];
const TORCH_WEIGHTS_37_TO_30: [number, Record<number, number>][] = [
  [0, { 0: 0.9049364924430847, 1: 0.1037871241569519, 2: -0.00872349739074707 }],
  [1, { 0: -0.11102914810180664, 1: 0.7847898602485657, 2: 0.3844239115715027, 3: -0.05818462371826172 }],
  [10, { 11: -0.10734295845031738, 12: 0.7115917205810547, 13: 0.4694182872772217, 14: -0.07366728782653809 }],
  [29, { 34: -0.032267093658447266, 35: 0.2460404634475708, 36: 0.7862263917922974 }],
];

for (const [outputSize, reference] of [[53, TORCH_WEIGHTS_37_TO_53], [30, TORCH_WEIGHTS_37_TO_30]] as const) {
  test(`bicubic taps for 37 -> ${outputSize} with scale factor (${outputSize} + 0.1) / 37 match PyTorch's kernel`, (t) => {
    const taps = bicubicTaps(37, outputSize, (outputSize + 0.1) / 37);
    t.is(taps.length, outputSize);
    for (const [row, weights] of reference) {
      for (let column = 0; column < 37; column++) {
        const expected = weights[column] ?? 0;
        t.true(Math.abs(weightOf(taps, row, column) - expected) < 3e-7, `row ${row} column ${column}: ${weightOf(taps, row, column)} vs ${expected}`);
      }
    }
  });
}

test("interpolatePosEmbed matches PyTorch on a 37x37 table resized to the 30x53 grid, class token kept", (t) => {
  const grid = 37;
  const data = new Float32Array((1 + grid * grid) * 2);
  data.set([0.25, -0.5]); // class token
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      data[(1 + r * grid + c) * 2] = Math.sin(0.3 * r) + Math.cos(0.2 * c) + 0.01 * r * c;
      data[(1 + r * grid + c) * 2 + 1] = r - c;
    }
  }
  const out = interpolatePosEmbed({ data, shape: [1, 1 + grid * grid, 2], dtype: "float32" }, 30, 53);
  t.deepEqual(out.shape, [1, 1 + 30 * 53, 2]);
  t.deepEqual([...out.data.subarray(0, 2)], [0.25, -0.5]);
  // PyTorch 1.13 values (same table built in NumPy float32, DINOv2's interpolate call).
  const reference: [number, number, [number, number]][] = [
    [0, 0, [1.0273065567016602, 0.1681797206401825]],
    [7, 11, [1.2351349592208862, 1.1651054620742798]],
    [15, 26, [1.7630455493927002, 0.5904979109764099]],
    [29, 52, [12.548922538757324, -0.23329317569732666]],
  ];
  for (const [y, x, expected] of reference) {
    const base = (1 + y * 53 + x) * 2;
    for (let c = 0; c < 2; c++) t.true(Math.abs(out.data[base + c] - expected[c]) <= 4e-6 * Math.max(1, Math.abs(expected[c])), `(${y}, ${x}, ${c})`);
  }
});
