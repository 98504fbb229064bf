/**
 * The smallest Matroska stream ffmpeg reads raw RGB frames from with a timestamp each: what the
 * video writer sends ffmpeg, so that variable frame rates and gaps (dropped live frames) survive.
 * A raw pipe carries no timestamps: ffmpeg would number the frames at a fixed rate.
 *
 * Layout: EBML header; a Segment of unknown size (a stream); Info with a timestamp scale of 1 µs;
 * one video track, codec `V_UNCOMPRESSED`, colour space fourcc `RGB\x18` (packed RGB24); then one
 * Cluster per frame holding its absolute timestamp and one SimpleBlock. Sizes are written on 8
 * bytes (Matroska allows any length), which keeps the code free of size bookkeeping.
 * @module
 */

const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TIMESTAMP_SCALE = 0x2ad7b1;
const MUXING_APP = 0x4d80;
const WRITING_APP = 0x5741;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_NUMBER = 0xd7;
const TRACK_UID = 0x73c5;
const TRACK_TYPE = 0x83;
const CODEC_ID = 0x86;
const VIDEO = 0xe0;
const PIXEL_WIDTH = 0xb0;
const PIXEL_HEIGHT = 0xba;
const COLOUR_SPACE = 0x2eb524;
const CLUSTER = 0x1f43b675;
const CLUSTER_TIMESTAMP = 0xe7;
const SIMPLE_BLOCK = 0xa3;

const VIDEO_TRACK_TYPE = 1;
/** Nanoseconds per timestamp tick: 1 µs. */
export const MATROSKA_TICK_NS = 1000;
/** An 8-byte size with all value bits set: "unknown size" (a live stream). */
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** SimpleBlock: track number 1 (as a 1-byte vint), relative timestamp 0, flags "keyframe". */
const BLOCK_PREFIX = Buffer.from([0x81, 0x00, 0x00, 0x80]);

function idBytes(id: number): Buffer {
  const bytes: number[] = [];
  for (let rest = id; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from(bytes);
}

/** An element size as an 8-byte vint (marker 0x01, then 56 bits). */
function sizeBytes(size: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(size));
  bytes[0] = 0x01;
  return bytes;
}

function unsigned(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return bytes;
}

function element(id: number, payload: Buffer | readonly Buffer[]): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.concat(payload as Buffer[]);
  return Buffer.concat([idBytes(id), sizeBytes(body.length), body]);
}

/** Everything before the first frame, for frames of `width` x `height` RGB24. */
export function matroskaHeader(width: number, height: number): Buffer {
  const app = Buffer.from("endosynth");
  return Buffer.concat([
    element(EBML, [
      element(0x4286, unsigned(1)), // EBMLVersion
      element(0x42f7, unsigned(1)), // EBMLReadVersion
      element(0x42f2, unsigned(4)), // EBMLMaxIDLength
      element(0x42f3, unsigned(8)), // EBMLMaxSizeLength
      element(0x4282, Buffer.from("matroska")), // DocType
      element(0x4287, unsigned(4)), // DocTypeVersion
      element(0x4285, unsigned(2)), // DocTypeReadVersion
    ]),
    idBytes(SEGMENT),
    UNKNOWN_SIZE,
    element(INFO, [element(TIMESTAMP_SCALE, unsigned(MATROSKA_TICK_NS)), element(MUXING_APP, app), element(WRITING_APP, app)]),
    element(TRACKS, element(TRACK_ENTRY, [
      element(TRACK_NUMBER, unsigned(1)),
      element(TRACK_UID, unsigned(1)),
      element(TRACK_TYPE, unsigned(VIDEO_TRACK_TYPE)),
      element(CODEC_ID, Buffer.from("V_UNCOMPRESSED")),
      element(VIDEO, [element(PIXEL_WIDTH, unsigned(width)), element(PIXEL_HEIGHT, unsigned(height)), element(COLOUR_SPACE, Buffer.from("RGB\x18", "latin1"))]),
    ])),
  ]);
}

/**
 * The bytes before one frame's pixels: a Cluster at `ticks` (µs) holding a SimpleBlock of
 * `frameBytes` bytes, which must follow at once.
 */
export function matroskaFramePrefix(ticks: number, frameBytes: number): Buffer {
  const timestamp = element(CLUSTER_TIMESTAMP, unsigned(ticks));
  const blockHeader = Buffer.concat([idBytes(SIMPLE_BLOCK), sizeBytes(BLOCK_PREFIX.length + frameBytes), BLOCK_PREFIX]);
  const clusterSize = timestamp.length + blockHeader.length + frameBytes;
  return Buffer.concat([idBytes(CLUSTER), sizeBytes(clusterSize), timestamp, blockHeader]);
}
