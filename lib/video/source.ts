/**
 * What a video source string names, and how ffmpeg opens it: a file, a network stream, a capture
 * device or a generated test pattern.
 *
 * | source | opened as |
 * |---|---|
 * | `clip.mp4`, any file ffmpeg reads | a file (read at decoding speed, every frame kept) |
 * | `stream.sdp` | RTP described by an SDP file (live) |
 * | `udp://`, `tcp://`, `rtp://`, `rtsp://`, `rtsps://`, `rtmp://`, `srt://`, `http://`, `https://` (MJPEG, HLS, ...) | a network stream (live) |
 * | `/dev/video0` | a V4L2 capture device (Linux, live) |
 * | `v4l2:/dev/video0`, `avfoundation:0` (macOS), `dshow:video=Name` (Windows), `gdigrab:desktop`, `x11grab::0.0` | ffmpeg input format `<format>`, device `<rest>` (live) |
 * | `lavfi:testsrc=size=640x480:rate=30` | ffmpeg's generated test pattern, paced in real time (live) |
 * @module
 */
import { statSync } from "node:fs";
import { extname } from "node:path";
import { InputError } from "../errors.js";
import { assertString } from "../is.js";

/** How ffmpeg opens a source. */
export interface SourceSpec {
  /** The source as given. */
  source: string;
  /** ffmpeg's input arguments, `-i` and the input included. */
  inputArgs: string[];
  /** A live source: frames arrive in real time and never "end" on their own. */
  live: boolean;
  /** The file, when the source is one on disk (probed before decoding). */
  path?: string;
}

/** URL schemes read as live network streams. */
export const NETWORK_SCHEMES = ["udp", "tcp", "rtp", "rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https"] as const;

/** ffmpeg input formats accepted as `<format>:<device>`. */
export const DEVICE_FORMATS = ["v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "kmsgrab", "decklink", "lavfi"] as const;

const URL_PATTERN = /^([a-z][a-z0-9+.-]*):\/\//i;
const DEVICE_PATTERN = /^([a-z0-9]+):(.+)$/i;
const V4L2_DEVICE = /^\/dev\/video\d+$/;
/** RTP from an SDP file reads the SDP from a file and then opens UDP/RTP sockets: allow just those. */
const SDP_PROTOCOLS = ["-protocol_whitelist", "file,udp,rtp,crypto,data"];

/** Whether `source` names a live source (a network stream, a device or a test pattern), without checking it exists. */
export function isLiveSource(source: string): boolean {
  const url = URL_PATTERN.exec(source);
  if (url) return (NETWORK_SCHEMES as readonly string[]).includes(url[1].toLowerCase());
  if (V4L2_DEVICE.test(source) || extname(source).toLowerCase() === ".sdp") return true;
  const device = DEVICE_PATTERN.exec(source);
  return device !== null && (DEVICE_FORMATS as readonly string[]).includes(device[1].toLowerCase());
}

/**
 * How ffmpeg opens `source`.
 * @throws {@link endosynth!InputError | InputError} for an empty string, an unknown URL scheme, or a file that does not exist.
 */
export function parseSource(source: string): SourceSpec {
  assertString("source", source);
  const url = URL_PATTERN.exec(source);
  if (url) {
    const scheme = url[1].toLowerCase();
    if (scheme === "file") return fileSource(source.slice("file://".length), source);
    if (!(NETWORK_SCHEMES as readonly string[]).includes(scheme)) {
      throw new InputError(`Unknown source scheme ${scheme}:// in ${source}: expected a file, or one of ${NETWORK_SCHEMES.map((name) => `${name}://`).join(", ")}`, { key: "source" });
    }
    return { source, inputArgs: ["-i", source], live: true };
  }
  if (V4L2_DEVICE.test(source)) return { source, inputArgs: ["-f", "v4l2", "-i", source], live: true };
  const device = DEVICE_PATTERN.exec(source);
  if (device && (DEVICE_FORMATS as readonly string[]).includes(device[1].toLowerCase())) {
    const format = device[1].toLowerCase();
    // A generated pattern would otherwise come as fast as ffmpeg can draw it: pace it like a camera.
    return { source, inputArgs: [...(format === "lavfi" ? ["-re"] : []), "-f", format, "-i", device[2]], live: true };
  }
  if (extname(source).toLowerCase() === ".sdp") {
    const { inputArgs } = fileSource(source, source);
    return { source, inputArgs: [...SDP_PROTOCOLS, ...inputArgs], live: true };
  }
  return fileSource(source, source);
}

function fileSource(path: string, source: string): SourceSpec {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) throw new InputError(`Video file ${path} does not exist`, { file: path });
  if (stats.isDirectory()) throw new InputError(`Expected a video file but ${path} is a directory`, { file: path });
  // "file:" keeps ffmpeg from reading a name like "a:b.mp4" as protocol "a".
  return { source, inputArgs: ["-i", `file:${path}`], live: false, path };
}
