/**
 * Checks of an ONNX file given to `load(name, { onnx })` before anything runs it: that endosynth
 * converted it, from the model named, in a known precision, and that the weights file beside it is
 * the one it was written with.
 * @module
 */
import { stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ProgressCallback } from "../progress.js";
import { fileSha256 } from "../cache/file_stamps.js";
import { FileFormatError, InputError } from "../errors.js";
import { readOnnxMetadata } from "../onnx/metadata.js";
import { EXTERNAL_DATA_KEYS } from "../onnx/writer.js";
import type { Precision } from "./options.js";
import type { ModelName } from "../models/registry.js";

/**
 * Converters before the version was derived from their sources numbered it 1, 2, 3, 4; those
 * before 4 did not record their data file's size and SHA-256.
 */
function isUnrecordedWeightsVersion(version: string | undefined): boolean {
  return version === undefined || (/^\d+$/.test(version) && Number(version) < 4);
}

/**
 * Checks that the ONNX file of `load(name, { onnx })` is `name` as converted by endosynth: its
 * metadata names the model and precision (a graph from elsewhere lacks the inference contract, and
 * another model's file would run without complaint and return the wrong depth).
 */
function assertConvertedModel(name: ModelName, onnxPath: string, metadata: Record<string, string>): Precision {
  const where = { file: onnxPath, key: "options.onnx" };
  if (metadata.model === undefined) {
    throw new InputError(
      `${onnxPath} was not converted by endosynth (its metadata names no model): load() runs the ONNX files endosynth convert ` +
        "and convertCheckpoint write, whose graph carries the whole inference contract (uint8 frame in, metres out)",
      where,
    );
  }
  if (metadata.model !== name) {
    throw new InputError(`${onnxPath} holds the ${metadata.model} model, not ${name}: load it as ${metadata.model}`, where);
  }
  if (isUnrecordedWeightsVersion(metadata.converter_version)) {
    throw new InputError(
      `${onnxPath} was converted by an older endosynth (converter version ${metadata.converter_version}), whose files do not ` +
        `record which weights file belongs to them: convert the checkpoint again (endosynth convert ${name})`,
      where,
    );
  }
  if (metadata.precision !== "fp32" && metadata.precision !== "fp16") {
    throw new InputError(`${onnxPath} has an unknown precision "${String(metadata.precision)}" in its metadata (expected fp32 or fp16)`, where);
  }
  return metadata.precision;
}

/**
 * Checks the weights file beside the model against the size and SHA-256 the model recorded when
 * both were written: a data file from another conversion, or a truncated one, would otherwise run
 * (or be baked into a cached TensorRT engine) as if it were this model's weights.
 */
async function assertOwnWeights(onnxPath: string, metadata: Record<string, string>, cacheRoot: string, onProgress: ProgressCallback | undefined): Promise<void> {
  const location = metadata[EXTERNAL_DATA_KEYS.location];
  if (location === undefined) return;
  const dataPath = join(dirname(onnxPath), location);
  const mismatch = (found: string): FileFormatError =>
    new FileFormatError(`${dataPath} is not the weights file ${onnxPath} was written with: ${found}. Convert the checkpoint again.`, { file: dataPath });
  const bytes = await stat(dataPath).then((s) => s.size, () => undefined);
  if (bytes === undefined) throw mismatch("it is missing");
  const expectedBytes = Number(metadata[EXTERNAL_DATA_KEYS.bytes]);
  if (bytes !== expectedBytes) throw mismatch(`it has ${bytes} bytes, the model expects ${expectedBytes}`);
  const verifying = (): void => onProgress?.({ phase: "verifying weights", detail: dataPath });
  if ((await fileSha256(dataPath, cacheRoot, verifying)) !== metadata[EXTERNAL_DATA_KEYS.sha256]) throw mismatch("its SHA-256 differs from the one recorded in the model");
}

/**
 * The precision of the converted model at `onnxPath`, once it is known to be `name` as endosynth
 * converted it, with its own weights (hashes remembered by file stamp in `cacheRoot`).
 * @throws {@link endosynth!InputError | InputError} a file endosynth did not convert, or converted from another model or by a
 * converter that did not record its weights.
 * @throws {@link endosynth!FileFormatError | FileFormatError} a file that is not ONNX, or a weights file that is missing, truncated
 * or another conversion's.
 */
export async function checkConvertedOnnx(name: ModelName, onnxPath: string, cacheRoot: string, onProgress: ProgressCallback | undefined): Promise<Precision> {
  const { metadata } = await readOnnxMetadata(onnxPath);
  const precision = assertConvertedModel(name, onnxPath, metadata);
  await assertOwnWeights(onnxPath, metadata, cacheRoot, onProgress);
  return precision;
}
