/**
 * `endosynth/video`: video in and out through ffmpeg (and ffprobe), over pipes of raw RGB24 frames: any container and
 * codec ffmpeg knows, files and live sources, no native addon; decoding and encoding run in their
 * own processes, in parallel with inference.
 *
 * ffmpeg is found in this order: `options.ffmpegPath` or `$ENDOSYNTH_FFMPEG`; the npm packages
 * `@ffmpeg-installer/ffmpeg` + `@ffprobe-installer/ffprobe` when installed; `ffmpeg` on PATH.
 *
 * Error classes:
 * - no ffmpeg found: {@link endosynth!BackendUnavailableError | BackendUnavailableError}, thrown before any work, naming the three ways
 *   to provide one.
 * - A video file that does not exist, bad options, an unsupported output container:
 *   {@link endosynth!InputError | InputError}; a file that cannot be read: {@link endosynth!FileFormatError | FileFormatError} with ffmpeg's message.
 * - ffmpeg failing or dying while decoding or encoding: {@link endosynth!RuntimeFailureError | RuntimeFailureError} with its exit
 *   code (or signal) and the last lines it printed.
 *
 * @example
 * ```ts
 * import { createVideoWriter, probeVideo, readVideo } from "endosynth/video";
 * const { width, height, fps } = await probeVideo("in.mp4");
 * const writer = await createVideoWriter("out.mp4", { width, height, fps });
 * for await (const { frame, pts } of readVideo("in.mp4")) await writer.write(frame, pts);
 * await writer.close();
 * ```
 * @module endosynth/video
 */
export { findFfmpegPrograms, type FfmpegOptions, type FfmpegPrograms, type ProgramOrigin } from "./discovery.js";
export { probeVideo, type VideoInfo } from "./probe.js";
export { readVideo, readVideoFrames, type QueuePolicy, type ReadVideoOptions, type VideoFrame, type VideoWarning } from "./reader.js";
export { isLiveSource } from "./source.js";
export {
  checkAudioCopy,
  createVideoWriter,
  VIDEO_OUTPUT_EXTENSIONS,
  videoEncodingFor,
  type VideoEncoding,
  type VideoWriter,
  type VideoWriterOptions,
} from "./writer.js";
export {
  DepthStackWriter,
  encodeDepthPng16,
  encodeDepthTiff,
  writeDepthPng16,
  writeDepthTiff,
  type DepthPngOptions,
  type StackedFrame,
} from "./depth_files.js";
export { streamDepth, type DepthFrame, type DepthModel, type FrameWithData, type StreamItem, type StreamOptions, type StreamSource } from "../stream.js";
