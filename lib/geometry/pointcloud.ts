/**
 * Point clouds from metric depth: pinhole back-projection of every valid pixel into the camera's
 * 3-D frame, ready for {@link writePly}.
 *
 * Conventions (OpenCV's): x to the right, y down, z forward along the optical axis, metres. Pixel
 * (u, v) = (column, row) has its centre at integer coordinates, so for a centred principal point
 * `cx = (width - 1) / 2`. The depth is the z coordinate (distance along the optical axis, what the
 * models predict), not the distance along the ray:
 *
 *   x = (u - cx) · z / fx,  y = (v - cy) · z / fy,  z = depth[v, u]
 *
 * Intrinsics are in pixels **of the depth map**: scale fx, cx by width / calibrated width (and fy,
 * cy by height) when the depth map is not at the calibration resolution.
 *
 * Invalid pixels (depth NaN, ±inf or ≤ 0) are skipped rather than kept as NaN points: PLY viewers
 * and fitting code do not expect NaN, and `pixels` says where each point came from.
 *
 * @example
 * ```ts
 * import { depthToPointCloud, writePly } from "endosynth";
 * const depth = await model.infer(rgb);
 * const { points, colors } = depthToPointCloud(depth, { fx: 1000, fy: 1000, cx: 959.5, cy: 539.5 }, { rgb });
 * writePly("scene.ply", points, colors);
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { assertFiniteNumber, assertOptions, assertPlainObject, invalidParameter } from "../is.js";
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";

/** Pinhole camera intrinsics, in pixels of the depth map. */
export interface Intrinsics {
  /** Focal length along x (columns), pixels. */
  fx: number;
  /** Focal length along y (rows), pixels. */
  fy: number;
  /** Principal point column, pixels (pixel centres at integers). */
  cx: number;
  /** Principal point row, pixels. */
  cy: number;
}

/** Options of {@link depthToPointCloud}. */
export interface PointCloudOptions {
  /** uint8 [H, W, 3|4] image of the same size as the depth: gives each point its RGB colour. */
  rgb?: NdArray<"uint8">;
  /** Depths beyond this (metres) are skipped too; default none. */
  maxDepth?: number;
}

/** Points with, optionally, their colours and the pixels they came from. */
export interface PointCloud {
  /** float32 [N, 3]: x, y, z in metres, camera frame. */
  points: NdArray<"float32">;
  /** uint8 [N, 3] RGB, when `rgb` was given. */
  colors?: NdArray<"uint8">;
  /** Row-major pixel index (v · W + u) of each point. */
  pixels: Uint32Array;
}

function checkIntrinsics(intrinsics: Intrinsics): void {
  assertPlainObject("intrinsics", intrinsics);
  for (const key of ["fx", "fy", "cx", "cy"] as const) assertFiniteNumber(`intrinsics.${key}`, intrinsics[key]);
  for (const key of ["fx", "fy"] as const) {
    if (intrinsics[key] === 0) throw invalidParameter(`intrinsics.${key}`, "a non-zero focal length in pixels", intrinsics[key]);
  }
}

/**
 * Back-projects every valid pixel of a depth map (see the module notes for the conventions),
 * with colours when `rgb` is given.
 * @param depth float32 [H, W] metres, as `infer()` returns.
 * @throws {@link endosynth!InputError | InputError} for a depth that is not float32 [H, W], an rgb of another size, or
 * intrinsics that are not finite numbers (or a zero focal length).
 */
export function depthToPointCloud(depth: NdArray<"float32">, intrinsics: Intrinsics, options?: PointCloudOptions): PointCloud {
  const map = expectArray(depth, "depth", "float32", [-1, -1]);
  checkIntrinsics(intrinsics);
  assertOptions("options", options as unknown, ["rgb", "maxDepth"]);
  const maxDepth = options?.maxDepth ?? Infinity;
  if (typeof maxDepth !== "number" || !(maxDepth > 0)) throw invalidParameter("options.maxDepth", "a positive number of metres", options?.maxDepth);
  const [height, width] = map.shape;
  let rgb: NdArray<"uint8"> | undefined;
  if (options?.rgb !== undefined) {
    rgb = expectArray(options.rgb, "options.rgb", "uint8", [-1, -1, -1]);
    if (rgb.shape[0] !== height || rgb.shape[1] !== width || (rgb.shape[2] !== 3 && rgb.shape[2] !== 4)) {
      throw new InputError(
        `Expected options.rgb of shape (${height}, ${width}, 3 or 4) like the depth but received ${formatShape(rgb.shape)}`,
        { key: "options.rgb" },
      );
    }
  }

  const values = map.data;
  const isValid = (z: number) => z > 0 && z <= maxDepth && z !== Infinity;
  let count = 0;
  for (let i = 0; i < values.length; i++) if (isValid(values[i])) count++;

  const points = new Float32Array(count * 3);
  const pixels = new Uint32Array(count);
  const { fx, fy, cx, cy } = intrinsics;
  let n = 0;
  for (let v = 0; v < height; v++) {
    const rowFactor = (v - cy) / fy;
    for (let u = 0; u < width; u++) {
      const i = v * width + u;
      const z = values[i];
      if (!isValid(z)) continue;
      points[3 * n] = ((u - cx) / fx) * z;
      points[3 * n + 1] = rowFactor * z;
      points[3 * n + 2] = z;
      pixels[n++] = i;
    }
  }
  const cloud: PointCloud = { points: { data: points, shape: [count, 3], dtype: "float32" }, pixels };
  if (rgb) {
    const channels = rgb.shape[2];
    const colors = new Uint8Array(count * 3);
    for (let k = 0; k < count; k++) {
      const from = pixels[k] * channels;
      colors[3 * k] = rgb.data[from];
      colors[3 * k + 1] = rgb.data[from + 1];
      colors[3 * k + 2] = rgb.data[from + 2];
    }
    cloud.colors = { data: colors, shape: [count, 3], dtype: "uint8" };
  }
  return cloud;
}

/**
 * Back-projects every valid pixel of a depth map to a float32 [N, 3] array of camera-frame points
 * (metres); invalid pixels are skipped. See {@link depthToPointCloud} for colours and pixel indices.
 * @example
 * ```ts
 * const points = depthToPoints(depth, { fx: 1000, fy: 1000, cx: 959.5, cy: 539.5 });
 * ```
 */
export function depthToPoints(depth: NdArray<"float32">, intrinsics: Intrinsics): NdArray<"float32"> {
  return depthToPointCloud(depth, intrinsics).points;
}
