/** Helpers of the video tests: the ffmpeg the library finds, test videos, loopback senders. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { findFfmpegPrograms } from "../../lib/video/index.js";

/** The programs the library finds here (the @ffmpeg-installer packages on a machine without ffmpeg). */
export const programs = findFfmpegPrograms();

/** Runs ffmpeg to completion (quiet unless it fails). */
export function ffmpeg(args: string[], input?: Uint8Array): Buffer {
  return execFileSync(programs.ffmpeg, ["-v", "error", "-nostdin", "-y", ...args], { input, maxBuffer: 1 << 28 });
}

/** Frame i: a gradient that differs per frame and per channel, so any mix-up shows. */
export function knownFrame(i: number, width: number, height: number): NdArray<"uint8"> {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = 3 * (y * width + x);
      data[at] = (x * 4 + i * 20) & 255;
      data[at + 1] = (y * 5 + i * 7) & 255;
      data[at + 2] = (x * y + i * 31) & 255;
    }
  }
  return ndarray<"uint8">(data, [height, width, 3]);
}

/** Encodes raw frames with the ffmpeg command line itself (lossless FFV1), independent of our writer. */
export function encodeLossless(path: string, frames: NdArray<"uint8">[], fps = 10): void {
  const [height, width] = frames[0].shape;
  const raw = Buffer.concat(frames.map((frame) => frame.data));
  ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-framerate", String(fps), "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", "bgr0", path], raw);
}

/** ffmpeg's testsrc pattern, `frames` frames at `rate`, in whatever `path`'s extension says (extra output args appended). */
export function testPattern(path: string, frames: number, options: { size?: string; rate?: number; args?: string[] } = {}): void {
  const { size = "64x48", rate = 25, args = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] } = options;
  ffmpeg(["-f", "lavfi", "-i", `testsrc=size=${size}:rate=${rate}`, "-frames:v", String(frames), ...args, path]);
}

/** Presentation times of a file's frames as ffprobe reports them (seconds), independent of our reader. */
export function probedFrameTimes(path: string): number[] {
  const output = execFileSync(programs.ffprobe!, ["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "json", path]).toString();
  return (JSON.parse(output) as { frames: { pts_time: string }[] }).frames.map((frame) => Number(frame.pts_time));
}

/** A UDP port free on 127.0.0.1 now (and, for RTP, the next one too: RTCP). */
export async function freeUdpPort(even = false): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const socket = createSocket("udp4");
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => {
        const { port: bound } = socket.address();
        socket.close(() => resolve(bound));
      });
    });
    if (!even) return port;
    if (port % 2 === 0 && (await udpPortFree(port + 1))) return port;
  }
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 now. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * ffmpeg sending its testsrc pattern in real time (`-re`) to `output` with `format`, for at most
 * `seconds`; the test kills it at teardown.
 */
export function startSender(format: string, output: string, options: { seconds?: number; codec?: string[]; size?: string; extra?: string[] } = {}): ChildProcess {
  const { seconds = 60, codec = ["-c:v", "mpeg2video", "-g", "5"], size = "160x96", extra = [] } = options;
  const args = ["-v", "error", "-nostdin", "-re", "-f", "lavfi", "-i", `testsrc=size=${size}:rate=25`, "-t", String(seconds), ...codec, ...extra, "-f", format, output];
  return spawn(programs.ffmpeg, args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Stops a sender and waits for it to be gone. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once("close", resolve));
  child.kill("SIGKILL");
  await gone;
}
