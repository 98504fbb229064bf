/**
 * An HTTP and WebSocket server of metric depth, on `node:http` and `ws`:
 *
 * - `GET /health`: JSON with the model, backend, precision, package version, queue and live feed.
 * - `POST /v1/depth`: a frame (PNG, JPEG, or uint8 .npy) in, its depth out: float32 .npy metres by
 *   default, a colour map (`Accept: image/png`, `?range=`) or a 16-bit millimetre PNG
 *   (`?format=mm16`). The .npy is byte for byte what `endosynth infer -o depth.npy` writes.
 * - WebSocket `/v1/stream`: frames in, depth out, in order, dropping the oldest waiting frame
 *   when frames come faster than depth (and saying so).
 * - WebSocket `/v1/live`: the server's own live source ({@link DepthServer.live}) for viewers.
 * - `GET /`: the live viewer.
 *
 * Every refusal is a JSON error naming what was wrong (400 bad frame or parameter, 401 token,
 * 413 too large, 415 media type, 503 busy with Retry-After, 504 timeout); nothing a client sends can
 * make it hold more than (inflight + queue) bodies.
 *
 * @example
 * ```ts
 * import { load } from "endosynth";
 * import { serveDepth } from "endosynth/server";
 * const model = await load("dav2");
 * const server = await serveDepth(model, { port: 8731 });
 * console.log(`depth at ${server.url}v1/depth`);
 * // ... later
 * await server.close();
 * await model.dispose();
 * ```
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { InputError } from "../errors.js";
import { assertAbortSignal, assertFiniteNumber, assertIntegerInRange, assertOptions, assertPlainObject, assertString, describe, invalidParameter } from "../is.js";
import type { DepthModel } from "../stream.js";
import { AccessPolicy, isLoopback, MIN_TOKEN_LENGTH } from "./access.js";
import { type DepthRange, encodeDepth, requestedEncoding } from "./depth_formats.js";
import { decodeFrame, frameMediaType } from "./frames.js";
import { errorResponse, HttpError } from "./http_error.js";
import { InferenceQueue } from "./inference_queue.js";
import { LiveFeed, type LiveOptions, type LiveSource, type LiveSummary } from "./live_feed.js";
import type { PartialIntrinsics } from "./points.js";
import { deadlineAfter, round, type SocketContext, StreamConnection, streamSettings } from "./stream_socket.js";
import { loadViewer, VIEWER_HEADERS, type ViewerFile } from "./viewer.js";

/** What the server needs of a model: a loaded {@link endosynth!Model | Model} has it all. */
export interface ServedModel extends DepthModel {
  /** The runtime executing it, e.g. `"onnxruntime"`. */
  readonly backend: string;
  /** The precision of the network body, e.g. `"fp32"`. */
  readonly precision: string;
}

/** Options of {@link serveDepth}. */
export interface ServeOptions {
  /** Address to bind; default `"127.0.0.1"` (this machine only). Any other needs `token`. */
  host?: string;
  /** Port; default 8731; 0 picks a free one (see {@link DepthServer.port}). */
  port?: number;
  /**
   * Bearer token every request must carry (`Authorization: Bearer <token>` or `?token=`), at least
   * 16 characters. Required to bind to an address other than loopback.
   */
  token?: string;
  /** Frames inferred at once, 1-64; default 2. */
  inflight?: number;
  /** Requests admitted to wait beyond those inferring, 0-1024; more get 503 with Retry-After. Default 8. */
  queue?: number;
  /** Longest a request may take, body upload included, ms; default 30000 (then 408 or 504). */
  timeoutMs?: number;
  /** Largest request body or WebSocket message, bytes; default 64 MiB (then 413, or close code 1009). */
  maxBodyBytes?: number;
  /** Most pixels a PNG or JPEG may declare; default 7680 x 4320 (8K). */
  maxPixels?: number;
  /** Colour-map range in metres when a request gives none; default [0.02, 0.2] (`depth2rgb`'s usual). */
  range?: readonly [number, number];
  /** Camera intrinsics for the viewer's point clouds, pixels of the frame; defaults: fx = fy = width, centred. */
  intrinsics?: PartialIntrinsics;
  /** About how many points the viewer's point cloud has, 100-1000000; default 20000. */
  maxPoints?: number;
}

const SERVE_OPTIONS = ["host", "port", "token", "inflight", "queue", "timeoutMs", "maxBodyBytes", "maxPixels", "range", "intrinsics", "maxPoints"] as const;

const DEFAULTS = {
  host: "127.0.0.1",
  port: 8731,
  inflight: 2,
  queue: 8,
  timeoutMs: 30_000,
  maxBodyBytes: 64 * 2 ** 20,
  maxPixels: 7680 * 4320,
  range: [0.02, 0.2] as DepthRange,
  maxPoints: 20_000,
};

/** Unsent result bytes per socket beyond which it gets no new result: it is not keeping up. */
const MAX_UNSENT_BYTES = 8 * 2 ** 20;
/** Open WebSockets at once (each can hold a frame in memory). */
const MAX_SOCKETS = 64;
/** How long a refused upload may keep sending before its connection is cut. */
const DRAIN_GRACE_MS = 2000;
/** How often a closing server looks for keep-alive connections that have turned idle. */
const IDLE_SWEEP_MS = 50;
/** How long WebSocket clients get to acknowledge a close before they are cut off. */
const CLOSE_GRACE_MS = 1000;

/** @internal */
export type Settings = Required<Omit<ServeOptions, "token" | "intrinsics">> & { token?: string; intrinsics: PartialIntrinsics };

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/**
 * Checks {@link ServeOptions} and fills in the defaults (for a CLI to check them before loading a model).
 * @internal
 */
export function checkServeOptions(options: ServeOptions): Settings {
  assertOptions("options", options, SERVE_OPTIONS);
  const settings = { ...DEFAULTS, ...options, intrinsics: options.intrinsics ?? {} } as Settings;
  assertString("options.host", settings.host);
  assertIntegerInRange("options.port", settings.port, 0, 65535);
  assertIntegerInRange("options.inflight", settings.inflight, 1, 64);
  assertIntegerInRange("options.queue", settings.queue, 0, 1024);
  assertIntegerInRange("options.timeoutMs", settings.timeoutMs, 1, 3_600_000);
  assertIntegerInRange("options.maxBodyBytes", settings.maxBodyBytes, 1, 2 ** 31 - 1);
  assertIntegerInRange("options.maxPixels", settings.maxPixels, 1, 2 ** 31 - 1);
  assertIntegerInRange("options.maxPoints", settings.maxPoints, 100, 1_000_000);
  const range = settings.range as unknown;
  if (!Array.isArray(range) || range.length !== 2 || !range.every(Number.isFinite) || !(range[0] < range[1])) {
    throw invalidParameter("options.range", "[min, max] metres with min < max", range);
  }
  assertPlainObject("options.intrinsics", settings.intrinsics);
  assertOptions("options.intrinsics", settings.intrinsics, ["fx", "fy", "cx", "cy"]);
  for (const [key, value] of Object.entries(settings.intrinsics)) {
    assertFiniteNumber(`options.intrinsics.${key}`, value);
    if ((key === "fx" || key === "fy") && value === 0) throw invalidParameter(`options.intrinsics.${key}`, "a non-zero focal length in pixels", value);
  }
  if (settings.token !== undefined) {
    assertString("options.token", settings.token);
    if (settings.token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(settings.token)) {
      throw new InputError(`Expected a token of at least ${MIN_TOKEN_LENGTH} printable ASCII characters without spaces for options.token`, { key: "options.token" });
    }
  } else if (!isLoopback(settings.host)) {
    throw new InputError(
      `Binding to ${settings.host} lets other machines send requests: give a token (options.token, or --token) that every request must carry`,
      { key: "options.token" },
    );
  }
  return settings;
}

/**
 * Unsent bytes that only a client that does not read at all can cause: up to `inflight` + 1 results
 * (each at most float32 depth of the largest frame allowed, plus its point cloud) beyond the
 * back-pressure threshold, and 1 MiB of notices.
 */
function notReadingLimit(settings: Settings): number {
  const pixels = Math.max(settings.maxPixels, settings.maxBodyBytes / 3);
  const result = 4 * pixels + 15 * settings.maxPoints + 4096;
  return MAX_UNSENT_BYTES + (settings.inflight + 1) * result + 2 ** 20;
}

/** Refuses a request whose method the route does not take (405, naming the allowed ones). */
function allowMethods(request: IncomingMessage, allowed: readonly string[]): void {
  if (allowed.includes(request.method ?? "")) return;
  throw new HttpError(405, `${request.method} is not allowed here; use ${allowed.join(" or ")}`, { headers: { Allow: allowed.join(", ") } });
}

/** Refuses query parameters a route does not know, so a misspelt one is not silently ignored. */
function checkQuery(query: URLSearchParams, known: readonly string[]): void {
  for (const key of query.keys()) {
    if (!known.includes(key)) throw new InputError(`Unknown query parameter ${describe(key)}; known ones are ${known.join(", ")}`, { key: key.slice(0, 60) });
  }
}

/** The whole body, at most `limit` bytes (413 beyond), before `deadline` (408). */
function readBody(request: IncomingMessage, limit: number, deadline: AbortSignal): Promise<Buffer> {
  const declared = Number(request.headers["content-length"]);
  if (declared > limit) return Promise.reject(tooLarge(limit, `${declared} bytes are declared`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (outcome: () => void) => {
      request.off("data", onData).off("end", onEnd).off("close", onClose).off("error", onClose);
      deadline.removeEventListener("abort", onDeadline);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(() => reject(tooLarge(limit, "more arrived")));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(() => resolve(Buffer.concat(chunks, size)));
    const onClose = () => finish(() => reject(new HttpError(408, "The client closed the connection before the whole body arrived")));
    const onDeadline = () => finish(() => reject(new HttpError(408, `The request body did not arrive within the server's timeout (${size} bytes received)`)));
    request.on("data", onData).on("end", onEnd).on("close", onClose).on("error", onClose);
    deadline.addEventListener("abort", onDeadline, { once: true });
  });
}

function tooLarge(limit: number, what: string): HttpError {
  return new HttpError(413, `The body is larger than this server's limit of ${limit} bytes (${what}); send a smaller frame`, { key: "body" });
}

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(value);
  response.writeHead(status, { ...headers, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
  response.end(text);
}

/** Answers a refused WebSocket upgrade on the raw socket, as HTTP, and closes it. */
function refuseUpgrade(socket: Duplex, error: unknown): void {
  const { status, headers, body } = errorResponse(error);
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(text)}`,
    "Connection: close",
  ];
  socket.end(`${lines.join("\r\n")}\r\n\r\n${text}`);
}

/** A running depth server. Get one from {@link serveDepth}; stop it with {@link DepthServer.close}. */
export class DepthServer implements AsyncDisposable {
  /** The address it listens on, e.g. `"127.0.0.1"`. */
  readonly host: string;
  /** The port it listens on (the one picked when `port: 0` was asked). */
  readonly port: number;
  /** Its base URL, e.g. `"http://127.0.0.1:8731/"`: the viewer is here, the API under it. */
  readonly url: string;
  readonly #model: ServedModel;
  readonly #settings: Settings;
  readonly #http: Server;
  readonly #sockets: WebSocketServer;
  readonly #access: AccessPolicy;
  readonly #queue: InferenceQueue;
  readonly #live: LiveFeed;
  readonly #viewer: ReadonlyMap<string, ViewerFile>;
  readonly #version = packageVersion();
  readonly #stopLive = new AbortController();
  #liveRun: Promise<unknown> | undefined;
  #closed: Promise<void> | undefined;

  /** @internal use {@link serveDepth} */
  constructor(model: ServedModel, settings: Settings, http: Server, viewer: ReadonlyMap<string, ViewerFile>) {
    this.#model = model;
    this.#settings = settings;
    this.#http = http;
    this.#viewer = viewer;
    this.#sockets = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: true, maxPayload: settings.maxBodyBytes });
    this.#access = new AccessPolicy(settings.token);
    this.#queue = new InferenceQueue(model, { inflight: settings.inflight, waiting: settings.queue });
    this.#live = new LiveFeed({ ...this.#socketContext(), defaultRange: settings.range });
    const address = http.address();
    if (address === null || typeof address === "string") throw new Error("The HTTP server is not listening on a TCP port");
    this.host = address.address;
    this.port = address.port;
    this.url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}/`;
    http.on("request", (request: IncomingMessage, response: ServerResponse) => void this.#handle(request, response));
    http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(request, socket, head));
  }

  #socketContext(): SocketContext {
    return {
      queue: this.#queue,
      frameLimits: { maxPixels: this.#settings.maxPixels },
      timeoutMs: this.#settings.timeoutMs,
      intrinsics: this.#settings.intrinsics,
      maxPoints: this.#settings.maxPoints,
      inflight: this.#settings.inflight,
      maxBufferedBytes: MAX_UNSENT_BYTES,
      notReadingBytes: notReadingLimit(this.#settings),
    };
  }

  /** What `/health` answers, and the WebSockets' `hello`. */
  #describe(): Record<string, unknown> {
    return { model: this.#model.name, backend: this.#model.backend, precision: this.#model.precision, version: this.#version };
  }

  #health(): Record<string, unknown> {
    const queue = { running: this.#queue.running, waiting: this.#queue.waiting, inflight: this.#settings.inflight, capacity: this.#settings.queue };
    return { status: this.#closed ? "closing" : "ok", ...this.#describe(), queue, live: this.#live.status };
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      const url = new URL(request.url ?? "/", "http://localhost");
      this.#access.check(request, url.searchParams, false);
      if (url.pathname === "/v1/depth") return await this.#depth(request, response, url);
      if (url.pathname === "/health") {
        allowMethods(request, ["GET", "HEAD"]);
        return sendJson(response, 200, this.#health());
      }
      const file = this.#viewer.get(url.pathname);
      if (file) {
        allowMethods(request, ["GET", "HEAD"]);
        response.writeHead(200, { ...VIEWER_HEADERS, "Content-Type": file.type, "Content-Length": file.body.length });
        response.end(request.method === "HEAD" ? undefined : file.body);
        return;
      }
      throw new HttpError(404, `Nothing at ${url.pathname}: this server answers GET /, GET /health, POST /v1/depth and WebSockets at /v1/stream and /v1/live`);
    } catch (error) {
      this.#fail(request, response, error);
    }
  }

  async #depth(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    allowMethods(request, ["POST"]);
    checkQuery(url.searchParams, ["format", "range", "token"]);
    const encoding = requestedEncoding(url.searchParams, request.headers.accept, this.#settings.range);
    const type = frameMediaType(request.headers["content-type"]);
    const admission = this.#queue.admit();
    const deadline = deadlineAfter(this.#settings.timeoutMs, "The request");
    try {
      const body = await readBody(request, this.#settings.maxBodyBytes, deadline.signal);
      const frame = await decodeFrame(body, type, { maxPixels: this.#settings.maxPixels }, "body");
      const started = performance.now();
      const depth = await admission.infer(frame, deadline.signal);
      const inferMs = performance.now() - started;
      const { contentType, parts } = await encodeDepth(depth, encoding);
      response.writeHead(200, {
        "Content-Type": contentType,
        "Content-Length": parts.reduce((total, part) => total + part.byteLength, 0),
        "Cache-Control": "no-store",
        "Server-Timing": `infer;dur=${round(inferMs)}`,
      });
      for (const part of parts) response.write(part);
      response.end();
    } finally {
      admission.release();
      deadline.clear();
    }
  }

  /** Answers `error` as JSON; a connection whose body was not read to the end is closed after it. */
  #fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { status, headers, body } = errorResponse(error);
    const unread = !request.complete;
    sendJson(response, status, body, unread ? { ...headers, Connection: "close" } : headers);
    if (unread) {
      // Let the client finish sending so it reads the answer, but not for ever.
      request.resume();
      setTimeout(() => request.socket.destroy(), DRAIN_GRACE_MS).unref();
    }
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    try {
      const url = new URL(request.url ?? "/", "http://localhost");
      this.#access.check(request, url.searchParams, true);
      if (this.#closed) throw new HttpError(503, "The server is closing");
      if (this.#sockets.clients.size >= MAX_SOCKETS) {
        throw new HttpError(503, `${MAX_SOCKETS} WebSockets are open, the most this server keeps`, { headers: { "Retry-After": "5" } });
      }
      if (url.pathname === "/v1/stream") {
        checkQuery(url.searchParams, ["format", "range", "points", "token"]);
        const settings = streamSettings(url.searchParams, this.#settings.range);
        this.#accept(request, socket, head, (ws) => new StreamConnection(ws, this.#socketContext(), settings, this.#describe()));
      } else if (url.pathname === "/v1/live") {
        checkQuery(url.searchParams, ["token"]);
        this.#accept(request, socket, head, (ws) => this.#live.addViewer(ws, this.#describe()));
      } else {
        throw new HttpError(404, `No WebSocket at ${url.pathname}: there are /v1/stream and /v1/live`);
      }
    } catch (error) {
      refuseUpgrade(socket, error);
    }
  }

  #accept(request: IncomingMessage, socket: Duplex, head: Buffer, open: (ws: WebSocket) => void): void {
    this.#sockets.handleUpgrade(request, socket, head, (ws) => {
      // A protocol error (an oversized message, a bad frame) closes that socket; it must not throw.
      ws.on("error", () => ws.terminate());
      open(ws);
    });
  }

  /**
   * Plays a live source to the viewers at `/v1/live` (and the page at `/`): frames are inferred
   * as they come, newest first (a frame that arrives while another waits replaces it and counts as
   * dropped), and each viewer gets the frame, its depth colour map and a point cloud.
   * @returns the counts once the source ends, `signal` aborts or the server closes.
   * @throws {@link endosynth!InputError | InputError} when a live source is already playing.
   */
  live(source: LiveSource, options: LiveOptions = {}): Promise<LiveSummary> {
    if (source === null || typeof source !== "object" || !(Symbol.asyncIterator in source)) {
      throw invalidParameter("source", "an async iterable of frames", source);
    }
    assertOptions("options", options, ["signal"]);
    if (options.signal !== undefined) assertAbortSignal("options.signal", options.signal);
    if (this.#closed) throw new InputError("The server is closed");
    const signal = options.signal ? AbortSignal.any([options.signal, this.#stopLive.signal]) : this.#stopLive.signal;
    const run = this.#live.run(source, signal);
    this.#liveRun = run.catch(() => undefined);
    return run;
  }

  /**
   * Stops the server: no new connections, WebSockets are closed (code 1001), requests in progress
   * are answered, a live source is stopped. Idempotent. The model is the caller's to dispose.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#stopLive.abort();
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    for (const ws of this.#sockets.clients) {
      ws.close(1001, "The server is closing");
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    }
    // Keep-alive connections turn idle as their last answers go out: close them as they do.
    const sweep = setInterval(() => this.#http.closeIdleConnections(), IDLE_SWEEP_MS);
    this.#http.closeIdleConnections();
    await Promise.all([closed, this.#liveRun]).finally(() => clearInterval(sweep));
  }

  /** Same as {@link DepthServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function listen(http: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const why = error.code === "EADDRINUSE" ? "the port is in use" : error.code === "EADDRNOTAVAIL" ? "the address is not one of this machine's" : error.message;
      reject(new InputError(`Cannot listen on ${host}:${port}: ${why} (${error.code ?? "error"}); choose another port or host`, { key: "options.port", cause: error }));
    };
    http.once("error", onError);
    http.listen(port, host, () => {
      http.off("error", onError);
      resolve();
    });
  });
}

async function start(model: ServedModel, settings: Settings): Promise<DepthServer> {
  const viewer = await loadViewer();
  const http = createServer({
    // Our own deadline answers a slow upload with a JSON 408 first; these are the backstops.
    requestTimeout: settings.timeoutMs + 1000,
    headersTimeout: Math.min(60_000, settings.timeoutMs + 1000),
  });
  await listen(http, settings.host, settings.port);
  return new DepthServer(model, settings, http, viewer);
}

/**
 * Serves `model` over HTTP and WebSockets (see the module notes for the routes) and resolves once it
 * listens. Binds 127.0.0.1:8731 by default; any address other than loopback needs a `token`.
 *
 * @param model a loaded model (anything with `name`, `backend`, `precision` and `infer`).
 * @throws {@link endosynth!InputError | InputError} bad options, a non-loopback host without a token, or a port in use.
 */
export function serveDepth(model: ServedModel, options: ServeOptions = {}): Promise<DepthServer> {
  if (typeof (model as ServedModel | undefined)?.infer !== "function") throw invalidParameter("model", "a model (from load())", model);
  const settings = checkServeOptions(options);
  return start(model, settings);
}
