/**
 * PLY point clouds (binary little-endian, the form MeshLab, CloudCompare, Open3D and Blender read
 * fastest): vertices with float x, y, z and, optionally, uchar red, green, blue. Written atomically.
 *
 * @example
 * ```ts
 * import { depthToPointCloud, writePly } from "endosynth";
 * const { points, colors } = depthToPointCloud(depth, intrinsics, { rgb });
 * writePly("scene.ply", points, colors);
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { assertString } from "../is.js";
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";
import { writeFileAtomicSync } from "./atomic.js";

const FLOAT_BYTES = 4;

function header(count: number, withColors: boolean): Buffer {
  const lines = [
    "ply",
    "format binary_little_endian 1.0",
    "comment written by endosynth",
    `element vertex ${count}`,
    "property float x",
    "property float y",
    "property float z",
    ...(withColors ? ["property uchar red", "property uchar green", "property uchar blue"] : []),
    "end_header",
  ];
  return Buffer.from(`${lines.join("\n")}\n`, "ascii");
}

/**
 * Writes points (and colours) as a binary little-endian PLY file, atomically.
 * @param points float32 [N, 3], x y z per row (e.g. {@link endosynth/viz!depthToPoints}).
 * @param colors uint8 [N, 3] RGB per point.
 * @throws {@link endosynth!InputError | InputError} for arrays of the wrong dtype or shape, or colours for another number of points.
 */
export function writePly(path: string, points: NdArray<"float32">, colors?: NdArray<"uint8">): void {
  assertString("path", path);
  const xyz = expectArray(points, "points", "float32", [-1, 3]);
  const count = xyz.shape[0];
  if (colors !== undefined) {
    const rgb = expectArray(colors, "colors", "uint8", [-1, 3]);
    if (rgb.shape[0] !== count) {
      throw new InputError(`Expected colors of shape (${count}, 3), one per point, but received ${formatShape(rgb.shape)}`, { key: "colors" });
    }
  }
  const stride = 3 * FLOAT_BYTES + (colors ? 3 : 0);
  const body = Buffer.allocUnsafe(count * stride);
  for (let i = 0; i < count; i++) {
    const at = i * stride;
    body.writeFloatLE(xyz.data[3 * i], at);
    body.writeFloatLE(xyz.data[3 * i + 1], at + FLOAT_BYTES);
    body.writeFloatLE(xyz.data[3 * i + 2], at + 2 * FLOAT_BYTES);
    if (colors) {
      body[at + 12] = colors.data[3 * i];
      body[at + 13] = colors.data[3 * i + 1];
      body[at + 14] = colors.data[3 * i + 2];
    }
  }
  writeFileAtomicSync(path, [header(count, colors !== undefined), body]);
}
