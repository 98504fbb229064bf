/**
 * `/v1/live`: the server's own live source (`endosynth live`), inferred and broadcast to every
 * viewer. A live source never waits for inference: frames are taken as they come and the newest
 * wins; a frame that arrives while another waits replaces it and counts as dropped. Each viewer gets
 * the input frame (JPEG), the depth colour map at the viewer's own range (PNG) and a sampled point
 * cloud; a viewer that does not keep up (results unsent beyond a limit) skips frames, counted in its
 * own `dropped`.
 * @module
 */
import sharp from "sharp";
import type { WebSocket } from "ws";
import { AbortError, InputError } from "../errors.js";
import { describe } from "../is.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { type DepthRange, encodeDepth } from "./depth_formats.js";
import { errorResponse } from "./http_error.js";
import type { InferenceQueue } from "./inference_queue.js";
import { closedForNotReading, type Part, sendNotice, sendWithParts } from "./messages.js";
import { intrinsicsFor, type PartialIntrinsics, type PointsPayload, samplePoints } from "./points.js";
import { configuredSettings, parseTextMessage, POINTS_MEDIA_TYPE, round } from "./stream_socket.js";

/** A frame of a live source, with the source's timestamp when it has one. */
export interface LiveFrame {
  /** uint8 [H, W, 3|4]. */
  frame: NdArray<"uint8">;
  /** The frame's presentation time in seconds, passed on to viewers. */
  timestamp?: number;
}

/** What a live source yields: frames, or frames with their timestamp. */
export type LiveSource = AsyncIterable<NdArray<"uint8"> | LiveFrame>;

/** Options of {@link DepthServer.live}. */
export interface LiveOptions {
  /** Stops the feed (the source is closed); `live()` then resolves with the counts so far. */
  signal?: AbortSignal;
}

/** Counts of a live run. */
export interface LiveSummary {
  /** Frames the source delivered. */
  frames: number;
  /** Frames inferred and broadcast. */
  inferred: number;
  /** Frames replaced by a newer one before inference could take them. */
  dropped: number;
  /** Frames whose inference failed (each reported to the viewers). */
  failed: number;
}

/** What the feed needs of its server. */
export interface LiveContext {
  queue: InferenceQueue;
  intrinsics: PartialIntrinsics;
  maxPoints: number;
  maxBufferedBytes: number;
  notReadingBytes: number;
  defaultRange: DepthRange;
}

interface Captured {
  index: number;
  frame: NdArray<"uint8">;
  timestamp?: number;
  /** performance.now() when the source delivered it. */
  capturedAt: number;
}

interface Viewer {
  ws: WebSocket;
  range: DepthRange;
  skipped: number;
}

/** JPEG quality of the input frames sent to viewers: they are for looking at. */
const PREVIEW_QUALITY = 80;

function captured(item: NdArray<"uint8"> | LiveFrame, index: number): Captured {
  const isLiveFrame = typeof item === "object" && item !== null && "frame" in item;
  const frame = isLiveFrame ? item.frame : item;
  const timestamp = isLiveFrame ? item.timestamp : undefined;
  return { index, frame, capturedAt: performance.now(), ...(timestamp === undefined ? {} : { timestamp }) };
}

/** The server's live broadcast: its viewers and, while one runs, its source. */
export class LiveFeed {
  readonly #context: LiveContext;
  readonly #viewers = new Set<Viewer>();
  #summary: LiveSummary | undefined;
  #running = false;

  constructor(context: LiveContext) {
    this.#context = context;
  }

  /** Whether a source is being played, and its counts (undefined before any). */
  get status(): { running: boolean } & Partial<LiveSummary> {
    return { running: this.#running, ...this.#summary };
  }

  /** Adds a viewer; it hears every frame from now on, at its own colour range. */
  addViewer(ws: WebSocket, hello: Record<string, unknown>): void {
    const viewer: Viewer = { ws, range: this.#context.defaultRange, skipped: 0 };
    this.#viewers.add(viewer);
    ws.on("close", () => this.#viewers.delete(viewer));
    ws.on("message", (data, isBinary) => {
      if (!closedForNotReading(ws, this.#context.notReadingBytes)) this.#onMessage(viewer, isBinary ? undefined : String(data));
    });
    sendNotice(ws, { type: "hello", ...hello, live: this.status, settings: { format: "colormap", range: viewer.range, points: true } });
  }

  #onMessage(viewer: Viewer, text: string | undefined): void {
    try {
      if (text === undefined) throw new InputError("The live feed takes no frames: send them to /v1/stream");
      const message = parseTextMessage(text);
      if (message.type !== "configure") throw new InputError(`Unknown message type ${describe(message.type)}; the live feed takes "configure"`, { key: "type" });
      viewer.range = configuredSettings(message, { format: "colormap", range: viewer.range, points: true }, ["range"]).range;
      sendNotice(viewer.ws, { type: "configured", settings: { format: "colormap", range: viewer.range, points: true } });
    } catch (error) {
      sendNotice(viewer.ws, { type: "error", error: errorResponse(error).body.error });
    }
  }

  /** Plays `source` to the viewers until it ends or `signal` aborts. One source at a time. */
  async run(source: LiveSource, signal: AbortSignal | undefined): Promise<LiveSummary> {
    if (this.#running) throw new InputError("A live source is already playing on this server");
    this.#running = true;
    const summary: LiveSummary = { frames: 0, inferred: 0, dropped: 0, failed: 0 };
    this.#summary = summary;
    const iterator = source[Symbol.asyncIterator]();
    let latest: Captured | undefined;
    let finished = false;
    let failure: { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    const stop = () => {
      finished = true;
      notify();
    };
    signal?.addEventListener("abort", stop, { once: true });
    // Reads the source as fast as it delivers, keeping only the newest frame.
    const reading = (async () => {
      try {
        while (!finished) {
          const next = await iterator.next();
          if (next.done || finished) break;
          if (latest) summary.dropped++;
          latest = captured(next.value, summary.frames++);
          notify();
        }
      } catch (error) {
        failure = { error };
      } finally {
        stop();
      }
    })();
    try {
      for (;;) {
        if (latest === undefined) {
          if (finished) break;
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const item = latest;
        latest = undefined;
        await this.#inferAndBroadcast(item, summary);
        if (signal?.aborted) break;
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      stop();
      // A source blocked in next() (a camera waiting for a frame) only returns after it: do not wait.
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      if (!signal?.aborted) await reading;
      this.#running = false;
      this.#broadcastNotice({ type: "ended", live: this.status });
    }
    if (failure && !(failure.error instanceof AbortError)) throw failure.error;
    return { ...summary };
  }

  async #inferAndBroadcast(item: Captured, summary: LiveSummary): Promise<void> {
    const admission = this.#context.queue.admit({ evenIfFull: true });
    const started = performance.now();
    let depth: NdArray<"float32">;
    try {
      depth = await admission.infer(item.frame);
    } catch (error) {
      summary.failed++;
      this.#broadcastNotice({ type: "error", frame: item.index, error: errorResponse(error).body.error });
      return;
    } finally {
      admission.release();
    }
    summary.inferred++;
    const header = {
      type: "frame",
      frame: item.index,
      ...(item.timestamp === undefined ? {} : { timestamp: item.timestamp }),
      width: depth.shape[1],
      height: depth.shape[0],
      inferMs: round(performance.now() - started),
      latencyMs: round(performance.now() - item.capturedAt),
    };
    await this.#broadcast(item, depth, header, summary);
  }

  async #broadcast(item: Captured, depth: NdArray<"float32">, header: Record<string, unknown>, summary: LiveSummary): Promise<void> {
    const viewers = [...this.#viewers].filter((viewer) => {
      const keepsUp = viewer.ws.bufferedAmount <= this.#context.maxBufferedBytes;
      if (!keepsUp) viewer.skipped++;
      return keepsUp;
    });
    if (viewers.length === 0) return;
    const [height, width] = depth.shape;
    const channels = item.frame.shape[2];
    const image = await sharp(item.frame.data, { raw: { width, height, channels: channels as 3 | 4 } }).removeAlpha().jpeg({ quality: PREVIEW_QUALITY }).toBuffer();
    const points: PointsPayload = samplePoints(depth, item.frame, intrinsicsFor(this.#context.intrinsics, width, height), this.#context.maxPoints);
    const colourMaps = new Map<string, Promise<Uint8Array[]>>();
    for (const viewer of viewers) {
      const key = viewer.range.join(",");
      if (!colourMaps.has(key)) colourMaps.set(key, encodeDepth(depth, { format: "colormap", range: viewer.range }).then((encoded) => encoded.parts));
      const parts: Part[] = [
        { name: "image", type: "image/jpeg", bytes: image },
        { name: "depth", type: "image/png", bytes: await colourMaps.get(key)! },
        { name: "points", type: POINTS_MEDIA_TYPE, count: points.count, stride: points.stride, bytes: points.bytes },
      ];
      sendWithParts(viewer.ws, { ...header, range: viewer.range, dropped: summary.dropped + viewer.skipped }, parts);
    }
  }

  #broadcastNotice(notice: Record<string, unknown>): void {
    for (const viewer of this.#viewers) sendNotice(viewer.ws, notice);
  }
}
