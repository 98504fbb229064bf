/**
 * `endosynth/video`: video files and frame loops through ffmpeg.
 * @module endosynth/video
 */
export { createVideoWriter, probeVideo, readVideoFrames, type FfmpegOptions, type ReadVideoOptions, type VideoInfo, type VideoWriter, type VideoWriterOptions } from "./ffmpeg.js";
export { streamDepth, type DepthFrame, type DepthModel, type FrameWithData, type StreamItem, type StreamOptions, type StreamSource } from "../stream.js";
