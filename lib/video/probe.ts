/**
 * What a video file holds: size, frame rate, frame count, codecs. Read with ffprobe when there is
 * one, else from what ffmpeg prints about its input.
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { FileFormatError, InputError } from "../errors.js";
import { assertOptions, assertString, isFiniteNumber, isInteger } from "../is.js";
import { FFMPEG_OPTION_KEYS, type FfmpegOptions, type FfmpegPrograms, findFfmpegPrograms } from "./discovery.js";
import { describeExit, runToEnd } from "./process.js";

/** What {@link probeVideo} finds out about a video's first video stream (and first audio stream). */
export interface VideoInfo {
  /** Width of the decoded frames, pixels (after the display rotation ffmpeg applies). */
  width: number;
  /** Height of the decoded frames, pixels. */
  height: number;
  /** Frames per second (average rate; the nominal rate when the container gives no average). */
  fps: number;
  /** Number of frames when the container states it (mp4 does, mkv does not). */
  frameCount?: number;
  /** Duration in seconds, when known. */
  duration?: number;
  /** The stream's codec, e.g. `"h264"`. */
  codec: string;
  /** Display rotation in degrees stored with the stream (0 when none). */
  rotation: number;
  /** The codec of the first audio stream, e.g. `"aac"`; absent when the file has no audio. */
  audioCodec?: string;
}

/** A file that exists and is not a folder. */
export function checkVideoPath(path: string): void {
  assertString("path", path);
  if (!existsSync(path)) throw new InputError(`Video file ${path} does not exist`, { file: path });
  if (statSync(path).isDirectory()) throw new InputError(`Expected a video file but ${path} is a directory`, { file: path });
}

/** "30000/1001" → 29.97; undefined for "0/0" or junk. */
function parseRate(rate: unknown): number | undefined {
  if (typeof rate !== "string") return undefined;
  const [numerator, denominator = "1"] = rate.split("/");
  const value = Number(numerator) / Number(denominator);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

function optionalNumber(value: unknown): number | undefined {
  const number = typeof value === "string" ? Number(value) : value;
  return isFiniteNumber(number) ? number : undefined;
}

/** ffmpeg turns the frames upright when decoding, so a quarter turn swaps the decoded size. */
function uprightSize(width: number, height: number, rotation: number): { width: number; height: number } {
  return Math.abs(rotation) % 180 === 90 ? { width: height, height: width } : { width, height };
}

async function probeWithFfprobe(path: string, ffprobe: string): Promise<VideoInfo> {
  const args = [
    "-v", "error",
    "-show_entries", "stream=codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:stream_side_data=rotation:format=duration",
    "-of", "json", "--", path,
  ];
  const { exit, stdout, stderr } = await runToEnd(ffprobe, args);
  if (exit.code !== 0) {
    throw new FileFormatError(`${path}: not a video ffprobe can read (ffprobe ${describeExit(exit)}): ${stderr.trim()}`, { file: path });
  }
  const parsed = JSON.parse(stdout) as { streams?: Record<string, unknown>[]; format?: Record<string, unknown> };
  const streams = parsed.streams ?? [];
  const stream = streams.find((entry) => entry.codec_type === "video");
  if (!stream || !isInteger(stream.width) || !isInteger(stream.height)) {
    throw new FileFormatError(`${path}: no video stream found${stderr.trim() ? ` (${stderr.trim()})` : ""}`, { file: path });
  }
  const sideData = (stream.side_data_list as { rotation?: number }[] | undefined) ?? [];
  const rotation = sideData.find((entry) => typeof entry.rotation === "number")?.rotation ?? 0;
  const fps = parseRate(stream.avg_frame_rate) ?? parseRate(stream.r_frame_rate);
  if (fps === undefined) throw new FileFormatError(`${path}: the video stream states no frame rate`, { file: path });
  const info: VideoInfo = { ...uprightSize(stream.width, stream.height, rotation), fps, codec: String(stream.codec_name ?? "unknown"), rotation };
  const frameCount = optionalNumber(stream.nb_frames);
  if (frameCount !== undefined) info.frameCount = frameCount;
  const duration = optionalNumber(stream.duration) ?? optionalNumber(parsed.format?.duration);
  if (duration !== undefined) info.duration = duration;
  const audio = streams.find((entry) => entry.codec_type === "audio");
  if (audio) info.audioCodec = String(audio.codec_name ?? "unknown");
  return info;
}

/** "25 fps", "29.97 fps", "1k tbr" → number. */
function parseRateText(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = text.endsWith("k") ? Number(text.slice(0, -1)) * 1000 : Number(text);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/**
 * The same facts from `ffmpeg -i <file>`'s description of its input, for machines with ffmpeg but
 * no ffprobe: e.g. "Duration: 00:00:02.00, ..." and
 * "Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 160x96 [SAR 1:1 DAR 5:3], 25 fps, 25 tbr, ...".
 * The frame count is not printed there.
 */
async function probeWithFfmpeg(path: string, ffmpeg: string): Promise<VideoInfo> {
  const { stderr } = await runToEnd(ffmpeg, ["-hide_banner", "-nostdin", "-i", path]);
  const video = /Stream #\d+:\d+[^:]*: Video: (\w+).*$/m.exec(stderr);
  if (!video) {
    const reason = stderr.trim().split("\n").filter((line) => !line.startsWith("At least one output file")).slice(-3).join("\n");
    throw new FileFormatError(`${path}: not a video ffmpeg can read: ${reason || "no video stream found"}`, { file: path });
  }
  const line = video[0];
  const size = /, (\d{1,5})x(\d{1,5})\b/.exec(line);
  const fps = parseRateText(/, ([\d.]+k?) fps/.exec(line)?.[1]) ?? parseRateText(/, ([\d.]+k?) tbr/.exec(line)?.[1]);
  if (!size || fps === undefined) throw new FileFormatError(`${path}: ffmpeg states no size or frame rate for its video stream: ${line.trim()}`, { file: path });
  const rotationText = /displaymatrix: rotation of (-?[\d.]+) degrees/.exec(stderr)?.[1];
  const rotation = rotationText === undefined ? 0 : Number(rotationText);
  const info: VideoInfo = { ...uprightSize(Number(size[1]), Number(size[2]), rotation), fps, codec: video[1], rotation };
  const duration = /Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(stderr);
  if (duration) info.duration = Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
  const audio = /Stream #\d+:\d+[^:]*: Audio: (\w+)/.exec(stderr);
  if (audio) info.audioCodec = audio[1];
  return info;
}

/** {@link probeVideo} with the programs already found. @internal */
export function probeWith(programs: FfmpegPrograms, path: string): Promise<VideoInfo> {
  return programs.ffprobe ? probeWithFfprobe(path, programs.ffprobe) : probeWithFfmpeg(path, programs.ffmpeg);
}

/**
 * Reads the size, frame rate, frame count and codecs of a video file: with ffprobe when one is
 * found, else with ffmpeg alone (which states no frame count).
 * Arguments, the file's existence and the programs are checked synchronously (thrown); what the
 * programs find is reported through the promise.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when no ffmpeg is found.
 * @throws {@link endosynth!InputError | InputError} when the file does not exist.
 * @throws {@link endosynth!FileFormatError | FileFormatError} (rejected) when it cannot be read or has no video stream, with the program's message.
 */
export function probeVideo(path: string, options?: FfmpegOptions): Promise<VideoInfo> {
  assertOptions("options", options as unknown, FFMPEG_OPTION_KEYS);
  checkVideoPath(path);
  return probeWith(findFfmpegPrograms(options), path);
}
