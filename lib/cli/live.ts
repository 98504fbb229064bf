/**
 * `endosynth live <model> <source>`: serves depth like `serve` and plays `source` to the live
 * viewer at the printed URL (`--open` opens it in the default browser): input and depth side by
 * side, a point cloud, a range slider, fps / latency / dropped-frame counters.
 *
 * Sources are live streams and capture devices (`udp://`, `rtsp://`, `/dev/video0`, ...: whatever
 * {@link isLiveSource} accepts), read newest-frame-wins, or video files, played at their own frame
 * rate as a camera would deliver them (`--loop` starts over at the end).
 * @module
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { InputError } from "../errors.js";
import type { ModelName } from "../models/registry.js";
import { MODEL_NAMES } from "../models/registry.js";
import type { LiveFrame } from "../server/live_feed.js";
import { probeVideo } from "../video/probe.js";
import { readVideo, readVideoFrames } from "../video/reader.js";
import { isLiveSource } from "../video/source.js";
import { addServerOptions, type ServeCommandOptions, untilAborted, withServer } from "./serve.js";

interface LiveCommandOptions extends ServeCommandOptions {
  open?: boolean;
  loop?: boolean;
}

/** A source ready to play: what to call it, and its frames. */
export interface OpenedSource {
  description: string;
  frames: AsyncIterable<LiveFrame>;
}

/** A video file's frames at its frame rate (each with its timestamp), over and over with `loop`. */
async function* pacedVideo(path: string, fps: number, loop: boolean): AsyncGenerator<LiveFrame> {
  const start = performance.now();
  let index = 0;
  let passStart: number;
  do {
    passStart = index;
    for await (const frame of readVideoFrames(path)) {
      const timestamp = index / fps;
      const due = start + timestamp * 1000 - performance.now();
      if (due > 0) await sleep(due);
      yield { frame, timestamp };
      index++;
    }
    // A video that decodes to no frames would otherwise restart ffmpeg for ever.
  } while (loop && index > passStart);
}

/** A live source's frames as they arrive: ffmpeg keeps only the newest while the model is busy. */
async function* liveFrames(source: string): AsyncGenerator<LiveFrame> {
  for await (const { frame, pts } of readVideo(source, { queue: "drop" })) yield { frame, ...(Number.isNaN(pts) ? {} : { timestamp: pts }) };
}

/**
 * Opens the source a user named, checking it before the model loads: a live stream or device as
 * it comes, or a video file (probed with ffprobe) paced at its frame rate.
 * @throws {@link endosynth!InputError | InputError} a file that does not exist; see {@link probeVideo} for the rest.
 */
export async function openLiveSource(source: string, options: { loop: boolean }): Promise<OpenedSource> {
  if (isLiveSource(source)) {
    if (options.loop) throw new InputError(`--loop applies to video files, not to a live source (${source})`, { file: source });
    return { description: `${source} (live)`, frames: liveFrames(source) };
  }
  const info = await probeVideo(source);
  return {
    description: `${source} (${info.width}x${info.height}, ${info.fps.toFixed(2)} fps${options.loop ? ", looping" : ""})`,
    frames: pacedVideo(source, info.fps, options.loop),
  };
}

/** Opens `url` in the default browser; says so on stderr if it cannot. */
function openBrowser(url: string): void {
  const [program, args] =
    process.platform === "darwin" ? ["open", [url]] : process.platform === "win32" ? ["cmd", ["/c", "start", "", url]] : ["xdg-open", [url]];
  const child = spawn(program, args as string[], { detached: true, stdio: "ignore" });
  child.on("error", (error) => process.stderr.write(`could not open a browser (${program}: ${error.message}): open ${url} yourself\n`));
  child.unref();
}

async function runLive(name: ModelName, source: string, options: LiveCommandOptions): Promise<void> {
  const opened = await openLiveSource(source, { loop: options.loop ?? false });
  await withServer(name, options, async ({ server, stopped }) => {
    if (!options.quiet) process.stderr.write(`playing ${opened.description}\n`);
    if (options.open) openBrowser(server.url);
    const summary = await server.live(opened.frames, { signal: stopped });
    if (!options.quiet) {
      const line = `${summary.frames} frames, ${summary.inferred} inferred, ${summary.dropped} dropped, ${summary.failed} failed`;
      process.stderr.write(stopped.aborted ? `${line}\n` : `the source ended: ${line}; still serving at ${server.url} (Ctrl-C to stop)\n`);
    }
    await untilAborted(stopped);
  });
}

/** Adds the `live` command. */
export function registerLiveCommand(program: Command): void {
  const command = program
    .command("live")
    .description("serve depth and play a source to the live viewer at the printed URL")
    .addArgument(program.createArgument("<model>", "the model").choices(MODEL_NAMES))
    .argument("<source>", "a live stream or device (udp://, tcp://, rtp://, rtsp://, http(s)://, /dev/videoN, v4l2:, avfoundation:, dshow:, lavfi:) or a video file (played at its frame rate)")
    .option("--open", "open the viewer in the default browser")
    .option("--loop", "play the video over and over");
  addServerOptions(command).action((name: ModelName, source: string, options: LiveCommandOptions) => runLive(name, source, options));
}
