import test from "ava";
import { bilinearTaps, relativePositionIndex, resizeRelativePositionTable, tableRows } from "../../../lib/models/blocks/relative_position.js";

test("relativePositionIndex of a 2x3 grid is timm 0.6.12's gen_relative_position_index((2, 3))", (t) => {
  // torch.Tensor.tolist() of timm's function, class token first.
  const expected = [
    [17, 15, 15, 15, 15, 15, 15],
    [16, 7, 6, 5, 2, 1, 0],
    [16, 8, 7, 6, 3, 2, 1],
    [16, 9, 8, 7, 4, 3, 2],
    [16, 12, 11, 10, 7, 6, 5],
    [16, 13, 12, 11, 8, 7, 6],
    [16, 14, 13, 12, 9, 8, 7],
  ];
  const index = relativePositionIndex({ height: 2, width: 3 });
  t.deepEqual(index.shape, [7, 7]);
  t.is(index.dtype, "int32");
  t.deepEqual([...index.data], expected.flat());
});

test("relativePositionIndex of MiDaS's 26x46 grid: one row per displacement, class-token rows last", (t) => {
  const grid = { height: 26, width: 46 };
  const index = relativePositionIndex(grid);
  const tokens = 1 + 26 * 46;
  const rows = tableRows(grid);
  t.is(rows, 51 * 91 + 3);
  t.deepEqual(index.shape, [tokens, tokens]);
  t.is(index.data[0], rows - 1);
  t.is(index.data[1], rows - 3);
  t.is(index.data[tokens], rows - 2);
  // Patch (row 3, column 40) attending to patch (row 20, column 2): dy = -17, dx = 38.
  const query = 1 + 3 * 46 + 40;
  const key = 1 + 20 * 46 + 2;
  t.is(index.data[query * tokens + key], (-17 + 25) * 91 + (38 + 45));
  // Every patch attending to itself reads the zero-displacement row.
  for (let patch = 1; patch < tokens; patch += 97) t.is(index.data[patch * tokens + patch], 25 * 91 + 45);
  t.true(index.data.every((row) => row >= 0 && row < rows));
});

test("bilinearTaps are PyTorch's align_corners=False taps, float32 weights included", (t) => {
  // Row i: the weight of each of the 5 inputs in output i, from torch 1.13's F.interpolate(size=(1, 7),
  // mode="bilinear") of the 5x5 identity. Output 3 shows the float32 scale 5/7: 1 - 6e-8 and 6e-8.
  const torchWeights = [
    [1.0, 0.0, 0.0, 0.0, 0.0],
    [0.4285714030265808, 0.5714285969734192, 0.0, 0.0, 0.0],
    [0.0, 0.714285671710968, 0.285714328289032, 0.0, 0.0],
    [0.0, 0.0, 0.9999999403953552, 5.960464477539063e-8, 0.0],
    [0.0, 0.0, 0.28571420907974243, 0.7142857909202576, 0.0],
    [0.0, 0.0, 0.0, 0.5714284777641296, 0.42857152223587036],
    [0.0, 0.0, 0.0, 0.0, 1.0],
  ];
  const taps = bilinearTaps(5, 7);
  t.is(taps.length, 7);
  taps.forEach((tap, i) => {
    const weights = [0, 0, 0, 0, 0];
    weights[tap.low] += tap.lowWeight;
    weights[tap.high] += tap.highWeight;
    t.deepEqual(weights, torchWeights[i], `output ${i}`);
  });
});

test("resizeRelativePositionTable matches torch's F.interpolate(bilinear) of MiDaS's _get_rel_pos_bias on a 3x3 window", (t) => {
  // A 3x3 window (5x5 distances + 3 class rows) resized for a 2x4 grid (3x7 distances + 3),
  // 2 heads: row² / 10 and -row. Expected values printed by torch 1.13 running MiDaS's reshape,
  // permute, F.interpolate(size=(3, 7), mode="bilinear"), permute, reshape and cat.
  const rows = 28;
  const table = new Float32Array(rows * 2);
  for (let row = 0; row < rows; row++) [table[2 * row], table[2 * row + 1]] = [(row * row) / 10, -row];
  const expected = [
    [0.8333332538604736, -1.6666665077209473], [1.0809522867202759, -2.238095283508301], [1.4476189613342285, -2.952380895614624],
    [1.899999976158142, -3.6666665077209473], [2.4952380657196045, -4.38095235824585], [3.1761906147003174, -5.095238208770752],
    [3.766666889190674, -5.666666507720947], [10.0, -10.0], [11.199999809265137, -10.571428298950195],
    [12.757142066955566, -11.285714149475098], [14.399999618530273, -12.0], [16.185712814331055, -12.714284896850586],
    [18.05714225769043, -13.428570747375488], [19.599998474121094, -13.999999046325684], [34.166664123535156, -18.333332061767578],
    [36.31904602050781, -18.904762268066406], [39.06666564941406, -19.619047164916992], [41.89999771118164, -20.333332061767578],
    [44.876190185546875, -21.047618865966797], [47.93809509277344, -21.761903762817383], [50.43333053588867, -22.333332061767578],
    [62.5, -25.0], [67.5999984741211, -26.0], [72.9000015258789, -27.0],
  ];
  const resized = resizeRelativePositionTable({ data: table, shape: [rows, 2], dtype: "float32" }, { height: 3, width: 3 }, { height: 2, width: 4 });
  t.deepEqual(resized.shape, [24, 2]);
  const values = expected.flat();
  for (let i = 0; i < values.length; i++) {
    // PyTorch rounds its intermediate sums; the resize rounds once: at most 2 ulp apart.
    t.true(Math.abs(resized.data[i] - values[i]) <= 2 * 2 ** -23 * Math.abs(values[i]), `entry ${i}: ${resized.data[i]} vs ${values[i]}`);
  }
  // The class-token rows are copied, not interpolated.
  t.deepEqual([...resized.data.subarray(42)], [62.5, -25, 67.6, -26, 72.9, -27].map(Math.fround));
});

test("resizeRelativePositionTable reproduces a linear distance table wherever no border clamps it", (t) => {
  // 32x32 window → 26x46 grid (MiDaS's case): 63x63 → 51x91, one head f(y, x) = 3y - 2x + 1.
  const window = { height: 32, width: 32 };
  const table = new Float32Array(tableRows(window));
  for (let y = 0; y < 63; y++) for (let x = 0; x < 63; x++) table[y * 63 + x] = 3 * y - 2 * x + 1;
  const resized = resizeRelativePositionTable({ data: table, shape: [table.length, 1], dtype: "float32" }, window, { height: 26, width: 46 });
  const source = (i: number, from: number, to: number): number => Math.min(Math.max((i + 0.5) * (from / to) - 0.5, 0), from - 1);
  let worst = 0;
  for (let y = 0; y < 51; y++) {
    for (let x = 0; x < 91; x++) {
      const exact = 3 * source(y, 63, 51) - 2 * source(x, 63, 91) + 1;
      worst = Math.max(worst, Math.abs(resized.data[y * 91 + x] - exact));
    }
  }
  // float32 weights and sample positions: ~1e-5 on values up to 190.
  t.true(worst < 5e-5, `worst ${worst}`);
});
