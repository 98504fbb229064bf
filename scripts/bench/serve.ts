/**
 * The `serve` benchmark, `npm run bench -- serve [--json]`: `POST /v1/depth` of a 480x360 uint8
 * .npy frame (the tiny EndoDAC fixture's input) answered with its float32 .npy depth, over loopback
 * with keep-alive, at 1, 4 and 16 concurrent clients:
 *
 * - with an instant stand-in model (depth computed from the frame in one pass), which measures the
 *   server itself: reading, decoding, queueing, encoding and sending;
 * - with the tiny EndoDAC on ONNX Runtime (CPU), where the model sets the pace;
 * - and the server's resident memory before and after 10,000 requests (16 clients, instant model).
 *
 * The server runs in a child process (this file, started with `--serve-child <model>`), so its
 * memory is its own and client and server do not share an event loop; they do share the machine's
 * cores.
 */
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { load } from "../../lib/model.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { serveDepth, type ServedModel } from "../../lib/server/server.js";

const FIXTURES = join(fileURLToPath(new URL("../../../shared/fixtures/", import.meta.url)));
/** The frame every request sends, read on first use. */
let frame: Buffer | undefined;
const theFrame = () => (frame ??= readFileSync(join(FIXTURES, "endodac", "input.npy")));
const CLIENTS = [1, 4, 16];
const REQUESTS: Readonly<Record<ChildModel, number>> = { instant: 2000, endodac: 48 };
const RSS_REQUESTS = 10_000;

type ChildModel = "instant" | "endodac";

/** Messages between the bench and its server process. */
type ToParent = { url: string } | { rss: number };

/** A model that answers at once: depth (first channel + 1) / 1000 metres, a fresh array per frame. */
class InstantModel implements ServedModel {
  readonly name = "instant";
  readonly backend = "none";
  readonly precision = "fp32";

  async infer(frame: NdArray<"uint8">): Promise<NdArray<"float32">> {
    const [height, width, channels] = frame.shape;
    const data = new Float32Array(height * width);
    for (let i = 0; i < data.length; i++) data[i] = (frame.data[i * channels] + 1) / 1000;
    return { data, shape: [height, width], dtype: "float32" };
  }
}

/** The child: serves a model and answers "rss" questions until told to stop. */
async function runServerChild(kind: ChildModel): Promise<void> {
  const cache = mkdtempSync(join(tmpdir(), "endosynth-bench-serve-"));
  const model = kind === "instant" ? new InstantModel() : await load("endodac", { checkpoint: join(FIXTURES, "endodac", "tiny.pth"), cacheDir: cache });
  // A queue long enough for 16 clients: the bench measures latency under load, not refusals.
  const server = await serveDepth(model, { port: 0, inflight: 2, queue: 32 });
  const send = (message: ToParent) => process.send!(message);
  process.on("message", async (message: string) => {
    if (message === "rss") send({ rss: process.memoryUsage().rss });
    if (message === "stop") {
      await server.close();
      if ("dispose" in model) await model.dispose();
      rmSync(cache, { recursive: true, force: true });
      process.disconnect();
    }
  });
  send({ url: server.url });
}

/** A server process, and how to ask it things. */
class ServerProcess {
  readonly #child: ChildProcess;
  url = "";

  constructor(kind: ChildModel) {
    this.#child = fork(fileURLToPath(import.meta.url), ["--serve-child", kind], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  }

  async started(): Promise<this> {
    this.url = ((await this.#next()) as { url: string }).url;
    return this;
  }

  #next(): Promise<ToParent> {
    return once(this.#child, "message").then(([message]) => message as ToParent);
  }

  async rss(): Promise<number> {
    this.#child.send("rss");
    return ((await this.#next()) as { rss: number }).rss;
  }

  async stop(): Promise<void> {
    const exited = once(this.#child, "exit");
    this.#child.send("stop");
    await exited;
  }
}

/** One POST of the frame; resolves with the status once the whole answer has arrived. */
function post(url: string, agent: Agent): Promise<number> {
  const body = theFrame();
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}v1/depth`, { method: "POST", agent, headers: { "Content-Type": "application/x-npy", "Content-Length": body.length } }, (response) => {
      response.on("data", () => undefined).on("end", () => resolve(response.statusCode!));
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

/** One line of the report. */
export interface ServeBenchRow {
  model: string;
  clients: number;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 200. */
  failed: number;
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** `total` requests from `clients` clients, each sending its next request when its answer is in. */
async function drive(url: string, clients: number, total: number): Promise<{ wallMs: number; latencies: number[]; failed: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  let failed = 0;
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (issued < total) {
        issued++;
        const sent = performance.now();
        if ((await post(url, agent)) !== 200) failed++;
        latencies.push(performance.now() - sent);
      }
    }),
  );
  const wallMs = performance.now() - started;
  agent.destroy();
  return { wallMs, latencies: latencies.sort((a, b) => a - b), failed };
}

async function measureModel(kind: ChildModel): Promise<ServeBenchRow[]> {
  const server = await new ServerProcess(kind).started();
  const rows: ServeBenchRow[] = [];
  try {
    await drive(server.url, 4, Math.min(40, REQUESTS[kind])); // warm-up
    for (const clients of CLIENTS) {
      const { wallMs, latencies, failed } = await drive(server.url, clients, REQUESTS[kind]);
      rows.push({
        model: kind === "instant" ? "instant stand-in" : "endodac tiny, ONNX Runtime CPU",
        clients,
        requests: REQUESTS[kind],
        requestsPerSecond: (REQUESTS[kind] * 1000) / wallMs,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        failed,
      });
    }
  } finally {
    await server.stop();
  }
  return rows;
}

/** Resident memory of the server before and after `RSS_REQUESTS` requests. */
async function measureMemory(): Promise<{ requests: number; beforeMB: number; afterMB: number; failed: number; seconds: number }> {
  const server = await new ServerProcess("instant").started();
  try {
    await drive(server.url, 16, 200); // warm-up: compiled code, filled pools
    const before = await server.rss();
    const { failed, wallMs } = await drive(server.url, 16, RSS_REQUESTS);
    const after = await server.rss();
    return { requests: RSS_REQUESTS, beforeMB: before / 1e6, afterMB: after / 1e6, failed, seconds: wallMs / 1000 };
  } finally {
    await server.stop();
  }
}

function formatRows(rows: readonly ServeBenchRow[]): string {
  const header = ["model", "clients", "requests", "req/s", "p50 ms", "p99 ms", "failed"];
  const lines = rows.map((row) => [row.model, String(row.clients), String(row.requests), row.requestsPerSecond.toFixed(1), row.p50Ms.toFixed(1), row.p99Ms.toFixed(1), String(row.failed)]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const render = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
  return [render(header), render(widths.map((width) => "-".repeat(width))), ...lines.map(render)].join("\n");
}

/** Runs the benchmark and prints its report; resolves to the exit code (1 if any request failed). */
export async function runServeBench({ json }: { json: boolean }): Promise<number> {
  const rows = [...(await measureModel("instant")), ...(await measureModel("endodac"))];
  const memory = await measureMemory();
  if (json) {
    console.log(JSON.stringify({ rows, memory }, null, 2));
  } else {
    console.log(`serve: POST /v1/depth, 480x360 uint8 .npy in, float32 .npy out, loopback keep-alive, Node ${process.versions.node}`);
    console.log(formatRows(rows));
    console.log(
      `server RSS: ${memory.beforeMB.toFixed(0)} MB before, ${memory.afterMB.toFixed(0)} MB after ${memory.requests} requests ` +
        `(16 clients, instant stand-in, ${memory.seconds.toFixed(0)} s, ${memory.failed} failed)`,
    );
  }
  return rows.some((row) => row.failed > 0) || memory.failed > 0 ? 1 : 0;
}

/** What `npm run bench` lists for this suite. */
export const SERVE_BENCH_DESCRIPTION = "POST /v1/depth at 1, 4 and 16 clients (requests/s, p50/p99), server RSS over 10,000 requests";

const childAt = process.argv.indexOf("--serve-child");
if (childAt >= 0) await runServerChild(process.argv[childAt + 1] as ChildModel);
