/** Shared by the server tests: a stand-in model, a started server, a WebSocket client. */
import type { ExecutionContext } from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { WebSocket } from "ws";
import { encodeNpy } from "../../lib/io/npy.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { type DepthServer, serveDepth, type ServedModel, type ServeOptions } from "../../lib/server/server.js";

/**
 * A model whose depth is known: (first channel + 1) / 1000 metres per pixel, after `latencyMs`.
 * It records how many inferences ran at once, and fails on frames whose first byte is 255.
 */
export class StandInModel implements ServedModel {
  readonly name = "stand-in";
  readonly backend = "none";
  readonly precision = "fp32";
  running = 0;
  maxRunning = 0;
  calls = 0;
  latencyMs: number;
  /** While set, inferences wait for it (see {@link StandInModel.hold}). */
  #gate: Promise<void> | undefined;

  constructor(latencyMs = 0) {
    this.latencyMs = latencyMs;
  }

  /** Makes inferences wait until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.#gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  async infer(frame: NdArray<"uint8">): Promise<NdArray<"float32">> {
    this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await this.#gate;
      if (this.latencyMs > 0) await sleep(this.latencyMs);
      if (frame.data[0] === 255) throw new Error("the stand-in fails on frames starting with 255");
      return expectedDepth(frame);
    } finally {
      this.running--;
    }
  }
}

/** The stand-in's depth of a frame. */
export function expectedDepth(frame: NdArray<"uint8">): NdArray<"float32"> {
  const [height, width, channels] = frame.shape;
  const data = new Float32Array(height * width);
  for (let i = 0; i < data.length; i++) data[i] = (frame.data[i * channels] + 1) / 1000;
  return { data, shape: [height, width], dtype: "float32" };
}

/** A uint8 [H, W, 3] frame whose pixel values follow from `seed`. */
export function testFrame(height: number, width: number, seed = 0): NdArray<"uint8"> {
  const data = new Uint8Array(height * width * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) % 251;
  return { data, shape: [height, width, 3], dtype: "uint8" };
}

/** A frame as the bytes of a .npy file. */
export function npyBytes(array: NdArray): Buffer {
  return Buffer.concat(encodeNpy(array));
}

/** Starts a server on a free loopback port, closed when the test ends. */
export async function startServer(t: ExecutionContext, model: ServedModel, options: ServeOptions = {}): Promise<DepthServer> {
  const server = await serveDepth(model, { port: 0, ...options });
  t.teardown(() => server.close());
  return server;
}

/** POSTs a frame to /v1/depth. */
export function postFrame(server: DepthServer, body: Uint8Array, options: { type?: string; query?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${server.url}v1/depth${options.query ?? ""}`, {
    method: "POST",
    body,
    headers: { "Content-Type": options.type ?? "application/x-npy", ...options.headers },
  });
}

/** A message as the server frames it: the JSON header and its binary parts. */
export interface Message {
  header: Record<string, any>;
  parts: Buffer[];
}

/** A WebSocket client that gathers the server's messages (header + parts). */
export class Client {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  #pending: Message | undefined;
  #waiters: (() => void)[] = [];

  constructor(url: string, options: { headers?: Record<string, string> } = {}) {
    this.ws = new WebSocket(url, options);
    this.ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        const header = JSON.parse(data.toString());
        if (header.parts?.length > 0) this.#pending = { header, parts: [] };
        else this.#deliver({ header, parts: [] });
      } else if (this.#pending) {
        this.#pending.parts.push(data);
        if (this.#pending.parts.length === this.#pending.header.parts.length) {
          this.#deliver(this.#pending);
          this.#pending = undefined;
        }
      }
    });
  }

  #deliver(message: Message): void {
    this.messages.push(message);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
  }

  /** Waits (at most `timeoutMs`) until `count` messages matching `filter` have arrived. */
  async waitFor(filter: (message: Message) => boolean, count = 1, timeoutMs = 20_000): Promise<Message[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = this.messages.filter(filter);
      if (matching.length >= count) return matching;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} messages; got: ${JSON.stringify(this.messages.map((m) => m.header))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** ws:// URL of a path on the server. */
export function socketUrl(server: DepthServer, path: string): string {
  return `${server.url.replace(/^http/, "ws")}${path}`;
}

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** The heap in use after a full collection, bytes. */
export function heapAfterCollection(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}
