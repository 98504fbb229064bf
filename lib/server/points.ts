/**
 * The point cloud the viewer draws: every `stride`-th pixel of a frame in both directions,
 * back-projected by {@link depthToPointCloud} with the intrinsics scaled to the sampled grid (pixel
 * (u, v) of the grid is pixel (stride·u, stride·v) of the frame, so fx, fy, cx, cy divide by the
 * stride: the points are exactly those of the full-resolution cloud at the sampled pixels).
 * @module
 */
import { depthToPointCloud, type Intrinsics } from "../geometry/pointcloud.js";
import type { NdArray } from "../ndarray/ndarray.js";

/**
 * Camera intrinsics of which any may be left out: a missing focal length is the frame's width (a
 * 53° horizontal field of view), fy defaults to fx, the principal point to the frame's centre.
 */
export type PartialIntrinsics = Partial<Intrinsics>;

/**
 * The intrinsics of a `width` x `height` frame: the given ones, with a missing focal length set to
 * the frame's width (a 53° horizontal field of view) and a missing principal point at the centre.
 */
export function intrinsicsFor(given: PartialIntrinsics, width: number, height: number): Intrinsics {
  const fx = given.fx ?? given.fy ?? width;
  return { fx, fy: given.fy ?? fx, cx: given.cx ?? (width - 1) / 2, cy: given.cy ?? (height - 1) / 2 };
}

/** A sampled point cloud as the viewer receives it. */
export interface PointsPayload {
  /** Points in it. */
  count: number;
  /** Pixels between samples, in both directions. */
  stride: number;
  /** float32 x, y, z (metres, camera frame) of every point, then uint8 r, g, b of every point. */
  bytes: Uint8Array;
}

function sampled<D extends "uint8" | "float32">(array: NdArray<D>, stride: number): NdArray<D> {
  const [height, width, channels = 1] = array.shape;
  const rows = Math.ceil(height / stride);
  const columns = Math.ceil(width / stride);
  const data = new (array.data.constructor as new (length: number) => NdArray<D>["data"])(rows * columns * channels);
  for (let v = 0; v < rows; v++) {
    for (let u = 0; u < columns; u++) {
      const from = (v * stride * width + u * stride) * channels;
      for (let c = 0; c < channels; c++) data[(v * columns + u) * channels + c] = array.data[from + c];
    }
  }
  const shape = array.shape.length === 3 ? [rows, columns, channels] : [rows, columns];
  return { data, shape, dtype: array.dtype } as NdArray<D>;
}

/** At most about `maxPoints` coloured points of the frame's depth (invalid depths are skipped). */
export function samplePoints(depth: NdArray<"float32">, frame: NdArray<"uint8">, intrinsics: Intrinsics, maxPoints: number): PointsPayload {
  const [height, width] = depth.shape;
  const stride = Math.max(1, Math.ceil(Math.sqrt((height * width) / maxPoints)));
  const { fx, fy, cx, cy } = intrinsics;
  const grid = { fx: fx / stride, fy: fy / stride, cx: cx / stride, cy: cy / stride };
  const cloud = depthToPointCloud(sampled(depth, stride), grid, { rgb: sampled(frame, stride) });
  const count = cloud.points.shape[0];
  const bytes = new Uint8Array(count * 15);
  bytes.set(new Uint8Array(cloud.points.data.buffer, cloud.points.data.byteOffset, count * 12));
  bytes.set(cloud.colors!.data, count * 12);
  return { count, stride, bytes };
}
