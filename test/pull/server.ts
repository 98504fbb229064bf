/**
 * A loopback HTTP server for the pull tests: serves files with ETag/Last-Modified and honours
 * Range/If-Range as S3 does, and misbehaves on request (cuts the connection, stalls, ignores
 * Range, answers an error status, redirects). Binds 127.0.0.1 on an ephemeral port; nothing
 * leaves the machine. Every request is recorded.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A file the server holds. */
export interface ServedFile {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  /** Answer every request with the whole file (200), as servers without Range support do. */
  ignoreRange?: boolean;
}

/** How to (mis)behave for one request. */
export interface Behaviour {
  /** Send the headers and this many body bytes, then cut the connection. */
  cutAfter?: number;
  /** Send the headers and this many body bytes, then send nothing more and never end. */
  stallAfter?: number;
  /** Never answer at all. */
  silent?: boolean;
  /** Answer this status with an empty body. */
  status?: number;
  /** Answer 302 to this location. */
  redirectTo?: string;
}

/** One request received. */
export interface RecordedRequest {
  path: string;
  headers: IncomingHttpHeaders;
}

/** The answer to one request for a file, before any misbehaviour. */
function fileAnswer(file: ServedFile, headers: IncomingHttpHeaders): { status: number; start: number; headers: Record<string, string> } {
  const size = file.body.byteLength;
  const common: Record<string, string> = { "accept-ranges": file.ignoreRange ? "none" : "bytes" };
  if (file.etag) common.etag = file.etag;
  if (file.lastModified) common["last-modified"] = file.lastModified;
  const range = /^bytes=(\d+)-$/.exec(headers.range ?? "");
  const ifRange = headers["if-range"];
  const rangeApplies = range && !file.ignoreRange && (ifRange === undefined || ifRange === file.etag || ifRange === file.lastModified);
  if (!rangeApplies) return { status: 200, start: 0, headers: { ...common, "content-length": String(size) } };
  const start = Number(range[1]);
  if (start >= size) return { status: 416, start: size, headers: { ...common, "content-range": `bytes */${size}`, "content-length": "0" } };
  return { status: 206, start, headers: { ...common, "content-range": `bytes ${start}-${size - 1}/${size}`, "content-length": String(size - start) } };
}

export class TestServer {
  readonly files = new Map<string, ServedFile>();
  readonly requests: RecordedRequest[] = [];
  /** Behaviours of the next requests, one consumed per request; then every request is served normally. */
  readonly next: Behaviour[] = [];
  readonly #server: Server;

  constructor(server: Server) {
    this.#server = server;
  }

  /** A server listening on 127.0.0.1, on a port the system picks. */
  static async start(): Promise<TestServer> {
    const server = createServer();
    const test = new TestServer(server);
    server.on("request", (request, response) => test.#answer(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return test;
  }

  /** The base URL, e.g. `http://127.0.0.1:41234`. */
  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Closes the server and every connection still open (stalled ones included). */
  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #answer(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? "/", "http://x").pathname;
    this.requests.push({ path, headers: request.headers });
    const behaviour = this.next.shift() ?? {};
    if (behaviour.silent) return;
    if (behaviour.status !== undefined) return void response.writeHead(behaviour.status, { "content-length": "0" }).end();
    if (behaviour.redirectTo !== undefined) return void response.writeHead(302, { location: behaviour.redirectTo, "content-length": "0" }).end();
    const file = this.files.get(path);
    if (!file) return void response.writeHead(404, { "content-length": "0" }).end();
    const answer = fileAnswer(file, request.headers);
    response.writeHead(answer.status, answer.headers);
    const body = file.body.subarray(answer.start);
    if (behaviour.cutAfter !== undefined) {
      response.write(body.subarray(0, behaviour.cutAfter), () => response.socket?.destroy());
    } else if (behaviour.stallAfter !== undefined) {
      response.write(body.subarray(0, behaviour.stallAfter));
    } else {
      response.end(body);
    }
  }
}
