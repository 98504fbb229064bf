import test from "ava";
import { InputError } from "../../lib/errors.js";
import { depthToPointCloud, depthToPoints, type Intrinsics } from "../../lib/geometry/pointcloud.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";

const HEIGHT = 48;
const WIDTH = 64;
const CAMERA: Intrinsics = { fx: 80, fy: 60, cx: 31.5, cy: 23.5 };

/** Depth (along the optical axis) of the plane n · X = d seen through each pixel of CAMERA. */
function planeDepth(normal: [number, number, number], offset: number): Float32Array {
  const depth = new Float32Array(HEIGHT * WIDTH);
  for (let v = 0; v < HEIGHT; v++) {
    for (let u = 0; u < WIDTH; u++) {
      const ray = [(u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy, 1];
      depth[v * WIDTH + u] = offset / (normal[0] * ray[0] + normal[1] * ray[1] + normal[2] * ray[2]);
    }
  }
  return depth;
}

/** Solves the 3x3 system m · x = b by Cramer's rule. */
function solve3(m: number[][], b: number[]): number[] {
  const det = (a: number[][]) =>
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const d = det(m);
  return [0, 1, 2].map((column) => det(m.map((row, r) => row.map((value, c) => (c === column ? b[r] : value)))) / d);
}

test("a fronto-parallel plane gives equal z and a grid spaced z / fx by z / fy, centred on the principal point", (t) => {
  const z = 0.08;
  const points = depthToPoints(ndarray<"float32">(new Float32Array(HEIGHT * WIDTH).fill(z), [HEIGHT, WIDTH]), CAMERA);
  t.deepEqual(points.shape, [HEIGHT * WIDTH, 3]);
  const at = (v: number, u: number) => Array.from(points.data.subarray(3 * (v * WIDTH + u), 3 * (v * WIDTH + u) + 3));
  for (let i = 0; i < HEIGHT * WIDTH; i++) t.is(points.data[3 * i + 2], Math.fround(z));
  const [x0, y0] = at(10, 20);
  const [x1] = at(10, 21);
  const [, y1] = at(11, 20);
  t.true(Math.abs(x1 - x0 - z / CAMERA.fx) < 1e-8);
  t.true(Math.abs(y1 - y0 - z / CAMERA.fy) < 1e-8);
  // Pixel centres straddle the principal point (31.5, 23.5) symmetrically.
  const [xl, yt] = at(23, 31);
  const [xr, yb] = at(24, 32);
  t.true(Math.abs(xl + xr) < 1e-9 && Math.abs(yt + yb) < 1e-9);
  t.true(Math.abs(xr - (0.5 * z) / CAMERA.fx) < 1e-8);
});

test("a tilted plane's points fit back to its normal and offset", (t) => {
  const length = Math.hypot(0.3, -0.2, 1);
  const normal: [number, number, number] = [0.3 / length, -0.2 / length, 1 / length];
  const offset = 0.1;
  const { points, pixels } = depthToPointCloud(ndarray<"float32">(planeDepth(normal, offset), [HEIGHT, WIDTH]), CAMERA);
  t.is(pixels.length, HEIGHT * WIDTH);
  // Least-squares fit of z = a x + b y + c over the points.
  const sums = { xx: 0, xy: 0, yy: 0, x: 0, y: 0, xz: 0, yz: 0, z: 0, n: 0 };
  for (let i = 0; i < pixels.length; i++) {
    const [x, y, z] = points.data.subarray(3 * i, 3 * i + 3);
    sums.xx += x * x; sums.xy += x * y; sums.yy += y * y; sums.x += x; sums.y += y;
    sums.xz += x * z; sums.yz += y * z; sums.z += z; sums.n++;
  }
  const [a, b, c] = solve3([[sums.xx, sums.xy, sums.x], [sums.xy, sums.yy, sums.y], [sums.x, sums.y, sums.n]], [sums.xz, sums.yz, sums.z]);
  // z = a x + b y + c  ⇔  (-a, -b, 1) · X = c.
  const norm = Math.hypot(a, b, 1);
  const fitted = [-a / norm, -b / norm, 1 / norm];
  fitted.forEach((value, i) => t.true(Math.abs(value - normal[i]) < 1e-5, `normal[${i}] ${value} vs ${normal[i]}`));
  t.true(Math.abs(c / norm - offset) < 1e-6, `offset ${c / norm}`);
  // Every point lies on the plane, within float32 rounding.
  let worst = 0;
  for (let i = 0; i < pixels.length; i++) {
    const p = points.data.subarray(3 * i, 3 * i + 3);
    worst = Math.max(worst, Math.abs(p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2] - offset));
  }
  t.true(worst < 1e-7, `worst ${worst}`);
});

test("invalid depths are skipped; pixels and colours follow the points, RGBA included", (t) => {
  const depth = ndarray<"float32">(new Float32Array([0.1, NaN, 0, -0.2, Infinity, 0.3, 0.25, 0.2]), [2, 4]);
  const rgba = ndarray<"uint8">(Uint8Array.from({ length: 32 }, (_, i) => i), [2, 4, 4]);
  const { points, colors, pixels } = depthToPointCloud(depth, { fx: 1, fy: 1, cx: 0, cy: 0 }, { rgb: rgba, maxDepth: 0.28 });
  t.deepEqual([...pixels], [0, 6, 7]);
  t.deepEqual(points.shape, [3, 3]);
  t.deepEqual([...points.data], [0, 0, Math.fround(0.1), 2 * 0.25, 0.25, 0.25, 3 * Math.fround(0.2), Math.fround(0.2), Math.fround(0.2)].map(Math.fround));
  t.deepEqual(colors!.shape, [3, 3]);
  t.deepEqual([...colors!.data], [0, 1, 2, 24, 25, 26, 28, 29, 30]);
});

test("bad intrinsics, depth and rgb are refused naming what was expected", (t) => {
  const depth = ndarray<"float32">(new Float32Array(4).fill(0.1), [2, 2]);
  t.throws(() => depthToPoints(depth, { fx: 1, fy: 1, cx: 0 } as Intrinsics), { instanceOf: InputError, message: "Expected a finite number for intrinsics.cy but received undefined" });
  t.throws(() => depthToPoints(depth, { fx: 0, fy: 1, cx: 0, cy: 0 }), { instanceOf: InputError, message: /non-zero focal length in pixels for intrinsics\.fx but received 0/ });
  t.throws(() => depthToPoints(ndarray<"float32">(new Float32Array(4), [4]), CAMERA), { instanceOf: InputError, message: /Expected shape \[N, N\] for depth but received \[4\]/ });
  const error = t.throws(() => depthToPointCloud(depth, CAMERA, { rgb: ndarray<"uint8">(new Uint8Array(27), [3, 3, 3]) }), { instanceOf: InputError });
  t.is(error.message, "Expected options.rgb of shape (2, 2, 3 or 4) like the depth but received (3, 3, 3)");
});
