/**
 * `endosynth/io`: arrays and the files they live in: NumPy `.npy`/`.npz` (every dtype, C and
 * Fortran order, zip64), zip archives, EndoSynth samples, images (sharp) and point-cloud files.
 * @module endosynth/io
 */
export {
  copy,
  DTYPES,
  expectArray,
  formatShape,
  HALF_PRECISIONS,
  ITEM_SIZE,
  ndarray,
  reshape,
  size,
  validateNdArray,
  zeros,
  type DType,
  type DTypeData,
  type HalfPrecision,
  type NdArray,
  type TypedArray,
} from "../ndarray/ndarray.js";
export { decodeBfloat16, decodeFloat16, encodeFloat16, roundFloat16 } from "../ndarray/float16.js";
export { MAX_IMAGE_SIDE, toImageArray, type ImageDataLike, type ImageInput, type SharpRawImage } from "../ndarray/convert.js";
export { encodeNpy, parseNpy, readNpy, writeNpy, type NpySource, type ReadNpyOptions } from "./npy.js";
export { readNpz, writeNpz, type WriteNpzOptions } from "./npz.js";
export { openZip, openZipFile, readZipEntry, readZipEntryHead, type ReadZipEntryOptions, type ZipArchive, type ZipEntry } from "./zip_reader.js";
export { ZipWriter, type ZipAddOptions } from "./zip_writer.js";
export { readSample, SEG_CLASSES, validateSample, writeSample, type EndoSynthSample, type SegClass, type WriteSampleOptions } from "./sample.js";
export { syntheticSample, type SyntheticSampleOptions } from "./synthetic_sample.js";
export { readImage, writeImage, type ImageOrientation, type ReadImageOptions, type WriteImageOptions } from "./image.js";
export { writePly } from "./ply.js";
