/**
 * `endosynth/viz`: colour maps equal to the reference's matplotlib ones, sample previews, and
 * depth as 3D points.
 * @module endosynth/viz
 */
export { DEPTH_DTYPES, depth2rgb, depthColorIndex, SPECTRAL_UINT8 } from "./depth2rgb.js";
export type { FloatDType } from "./dtype_arithmetic.js";
export { SET2_UINT8, seg2rgb } from "./seg2rgb.js";
export { sample2png, sample2rgb, type Sample2pngOptions } from "./sample2png.js";
export { SET2_COLORS, SPECTRAL_LUT } from "./colormaps.js";
export { depthToPointCloud, depthToPoints, type Intrinsics, type PointCloud, type PointCloudOptions } from "../geometry/pointcloud.js";
