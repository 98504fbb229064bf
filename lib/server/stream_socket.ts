/**
 * `/v1/stream`: a client sends frames (binary messages: PNG, JPEG or .npy), the server answers each
 * with its depth, in the order the frames came. Up to `inflight` frames of a connection are worked on
 * at once; one more may wait. When another arrives while one waits, the waiting (older) frame is
 * dropped and the client is told so in a `dropped` notice: a live client gets the newest depth
 * rather than an ever-growing delay. A client that does not read its results is treated the same
 * way (no new frame starts while more than `maxBufferedBytes` of results are unsent).
 *
 * Options come in the URL (`?format=npy|colormap|mm16&range=0.02,0.2&points=1`) or later in a text
 * message `{"type":"configure","format":"colormap","range":[0.02,0.2],"points":true}`.
 * @module
 */
import type { WebSocket } from "ws";
import { FileFormatError, InputError } from "../errors.js";
import { describe, isPlainObject } from "../is.js";
import { type DepthEncoding, type DepthFormat, type DepthRange, encodeDepth, parseDepthFormat, parseDepthRange } from "./depth_formats.js";
import { decodeFrame, describeStart, type FrameLimits, sniffFrameType } from "./frames.js";
import { errorResponse, HttpError } from "./http_error.js";
import type { Admission, InferenceQueue } from "./inference_queue.js";
import { closedForNotReading, type Part, sendNotice, sendWithParts } from "./messages.js";
import { intrinsicsFor, type PartialIntrinsics, samplePoints } from "./points.js";

/** What a connection needs of its server. */
export interface SocketContext {
  queue: InferenceQueue;
  frameLimits: FrameLimits;
  timeoutMs: number;
  intrinsics: PartialIntrinsics;
  maxPoints: number;
  /** Frames of one connection worked on at once. */
  inflight: number;
  /** Unsent result bytes beyond which no new frame starts. */
  maxBufferedBytes: number;
  /** Unsent bytes beyond which the client is not reading at all and its socket is closed. */
  notReadingBytes: number;
}

/** What a stream connection answers with. */
export interface StreamSettings extends DepthEncoding {
  /** Also send a sampled point cloud of each frame (for the viewer). */
  points: boolean;
}

/** The points part's media type: float32 xyz of every point, then uint8 rgb of every point. */
export const POINTS_MEDIA_TYPE = "application/x-endosynth-points";

/** A deadline that rejects with a 504 naming `what` after `ms`. */
export function deadlineAfter(ms: number, what: string): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new HttpError(504, `${what} took longer than ${ms} ms`)), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Settings from a `/v1/stream` URL's query. */
export function streamSettings(query: URLSearchParams, defaultRange: DepthRange): StreamSettings {
  const format = query.has("format") ? parseDepthFormat(query.get("format")!, "format") : "npy";
  const range = query.has("range") ? parseDepthRange(query.get("range")!, "range") : defaultRange;
  const points = query.get("points");
  if (points !== null && points !== "0" && points !== "1") {
    throw new InputError(`Expected 0 or 1 for points but received ${describe(points)}`, { key: "points" });
  }
  return { format, range, points: points === "1" };
}

/** Settings changed by a `configure` message (its other fields are refused by name). */
export function configuredSettings(message: Record<string, unknown>, current: StreamSettings, allowed: readonly string[]): StreamSettings {
  for (const key of Object.keys(message)) {
    if (key !== "type" && !allowed.includes(key)) {
      throw new InputError(`Unknown field ${describe(key)} in a configure message; known fields are ${allowed.join(", ")}`, { key: key.slice(0, 60) });
    }
  }
  const next = { ...current };
  if (message.format !== undefined) next.format = parseDepthFormat(String(message.format), "format");
  if (message.range !== undefined) {
    if (!Array.isArray(message.range)) throw new InputError("Expected range as [min, max] metres", { key: "range" });
    next.range = parseDepthRange(message.range.join(","), "range");
  }
  if (message.points !== undefined) {
    if (typeof message.points !== "boolean") throw new InputError(`Expected true or false for points but received ${describe(message.points)}`, { key: "points" });
    next.points = message.points;
  }
  return next;
}

/** The JSON object of a text message, or an InputError saying why it is not one. */
export function parseTextMessage(text: string): Record<string, unknown> {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new InputError(`Expected a JSON text message such as {"type":"configure",...} but received ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (!isPlainObject(message) || typeof message.type !== "string") {
    throw new InputError("Expected a JSON object with a \"type\" in a text message");
  }
  return message;
}

interface Received {
  index: number;
  bytes: Buffer;
  /** performance.now() at receipt: latency counts from here. */
  received: number;
}

/** Sends one message when its turn comes. */
type Outgoing = (sent: () => void) => void;

const CONFIGURABLE = ["format", "range", "points"] as const;

/** One `/v1/stream` connection. */
export class StreamConnection {
  readonly #ws: WebSocket;
  readonly #context: SocketContext;
  #settings: StreamSettings;
  #nextIndex = 0;
  #active = 0;
  #waiting: Received | undefined;
  #dropped = 0;
  /** Messages leave in the order of the frames they answer. */
  #outbox: Promise<void> = Promise.resolve();

  constructor(ws: WebSocket, context: SocketContext, settings: StreamSettings, hello: Record<string, unknown>) {
    this.#ws = ws;
    this.#context = context;
    this.#settings = settings;
    ws.on("message", (data, isBinary) => {
      if (closedForNotReading(ws, context.notReadingBytes)) return;
      if (isBinary) this.#onFrame(bytesOf(data));
      else this.#onText(bytesOf(data).toString());
    });
    ws.on("close", () => (this.#waiting = undefined));
    sendNotice(ws, { type: "hello", ...hello, settings });
  }

  #onText(text: string): void {
    try {
      const message = parseTextMessage(text);
      if (message.type !== "configure") throw new InputError(`Unknown message type ${describe(message.type)}; the stream takes "configure" and binary frames`, { key: "type" });
      this.#settings = configuredSettings(message, this.#settings, CONFIGURABLE);
      this.#send(Promise.resolve((sent) => sendNotice(this.#ws, { type: "configured", settings: this.#settings }, sent)));
    } catch (error) {
      this.#send(Promise.resolve((sent) => sendNotice(this.#ws, { type: "error", error: errorResponse(error).body.error }, sent)));
    }
  }

  #onFrame(bytes: Buffer): void {
    const item = { index: this.#nextIndex++, bytes, received: performance.now() };
    if (this.#canStart()) return this.#start(item);
    if (this.#waiting) this.#drop(this.#waiting, `frame ${item.index} arrived while ${this.#active} earlier frames were in progress`);
    this.#waiting = item;
  }

  #canStart(): boolean {
    return this.#active < this.#context.inflight && this.#ws.bufferedAmount <= this.#context.maxBufferedBytes;
  }

  #startWaiting(): void {
    if (this.#waiting === undefined || !this.#canStart() || this.#ws.readyState !== this.#ws.OPEN) return;
    const item = this.#waiting;
    this.#waiting = undefined;
    this.#start(item);
  }

  #start(item: Received): void {
    this.#active++;
    const outgoing = this.#answer(item);
    this.#send(outgoing);
    void outgoing.then(() => {
      this.#active--;
      this.#startWaiting();
    });
  }

  #drop(item: Received, reason: string): void {
    const dropped = ++this.#dropped;
    this.#send(Promise.resolve((sent) => sendNotice(this.#ws, { type: "dropped", frame: item.index, reason, dropped }, sent)));
  }

  /** Queues a message behind those of earlier frames; once written out, a waiting frame may start. */
  #send(outgoing: Promise<Outgoing>): void {
    this.#outbox = this.#outbox.then(() => outgoing).then((send) => send(() => this.#startWaiting()));
  }

  /** The message answering a frame (never rejects: a failure is an `error` notice for that frame). */
  async #answer(item: Received): Promise<Outgoing> {
    let admission: Admission;
    try {
      admission = this.#context.queue.admit();
    } catch (error) {
      const dropped = ++this.#dropped;
      return (sent) => sendNotice(this.#ws, { type: "dropped", frame: item.index, reason: (error as Error).message, dropped }, sent);
    }
    const deadline = deadlineAfter(this.#context.timeoutMs, `frame ${item.index}`);
    try {
      const settings = this.#settings;
      const name = `frame ${item.index}`;
      const type = sniffFrameType(item.bytes);
      if (type === undefined) throw new FileFormatError(`Expected ${name} to be a PNG, a JPEG or a .npy file but ${describeStart(item.bytes)}`, { key: name });
      const frame = await decodeFrame(item.bytes, type, this.#context.frameLimits, name);
      const started = performance.now();
      const depth = await admission.infer(frame, deadline.signal);
      const inferMs = performance.now() - started;
      const encoded = await encodeDepth(depth, settings);
      const parts: Part[] = [{ name: "depth", type: encoded.contentType, bytes: encoded.parts }];
      if (settings.points) {
        const [height, width] = depth.shape;
        const { bytes, count, stride } = samplePoints(depth, frame, intrinsicsFor(this.#context.intrinsics, width, height), this.#context.maxPoints);
        parts.push({ name: "points", type: POINTS_MEDIA_TYPE, count, stride, bytes });
      }
      const header = { type: "depth", frame: item.index, width: depth.shape[1], height: depth.shape[0], format: settings.format, ...rangeOf(settings.format, settings.range), inferMs: round(inferMs) };
      return (sent) => sendWithParts(this.#ws, { ...header, latencyMs: round(performance.now() - item.received), dropped: this.#dropped }, parts, sent);
    } catch (error) {
      return (sent) => sendNotice(this.#ws, { type: "error", frame: item.index, error: errorResponse(error).body.error }, sent);
    } finally {
      admission.release();
      deadline.clear();
    }
  }
}

function rangeOf(format: DepthFormat, range: DepthRange): { range?: DepthRange } {
  return format === "colormap" ? { range } : {};
}

/** Milliseconds to 0.1 ms, for messages. */
export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The bytes of a ws message (a Buffer, or fragments when it came in several). */
function bytesOf(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}
