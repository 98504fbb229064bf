/**
 * `endosynth serve <model>`: depth over HTTP and WebSockets (see lib/server/server.ts) until
 * Ctrl-C or SIGTERM, which close it cleanly (requests in progress are answered) and exit 0: for a
 * server that is the normal way to stop. The URL goes to stdout once it listens (`--json`: one JSON
 * object with it), logs to stderr.
 * @module
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { type BackendChoice, type Model } from "../model.js";
import type { ChannelOrder } from "../models/blocks/preprocess.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import { parseDepthRange } from "../server/depth_formats.js";
import { checkServeOptions, type DepthServer, serveDepth, type ServeOptions } from "../server/server.js";
import { parseNumber, parsePositiveInteger } from "./arguments.js";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.js";
import { loadForCommand } from "./load_model.js";

/** The options `serve` and `live` share. */
export interface ServeCommandOptions {
  checkpoint?: string;
  onnx?: string;
  backend: BackendChoice;
  threads?: number;
  channelOrder?: ChannelOrder;
  host: string;
  port: number;
  token?: string;
  inflight: number;
  queue: number;
  timeout: number;
  maxBody: number;
  range: [number, number];
  fx?: number;
  fy?: number;
  cx?: number;
  cy?: number;
  json?: boolean;
  quiet?: boolean;
}

function parsePort(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65535) throw new InvalidArgumentError("expected a port from 0 to 65535 (0: any free port)");
  return number;
}

function parseCount(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError("expected a whole number from 0");
  return number;
}

function parseRange(value: string): [number, number] {
  try {
    return [...parseDepthRange(value, "--range")] as [number, number];
  } catch {
    throw new InvalidArgumentError("expected two increasing numbers in metres, e.g. 0.02,0.2");
  }
}

/** Adds the model and server options that `serve` and `live` share. */
export function addServerOptions(command: Command): Command {
  return command
    .option("-c, --checkpoint <file>", "checkpoint (default: $ENDOSYNTH_CHECKPOINTS or ./checkpoints, <model>-f.pth)")
    .option("--onnx <file>", "run this converted ONNX model instead of a checkpoint")
    .addOption(new Option("--backend <backend>", "runtime").choices(["auto", "onnxruntime", "tensorrt"]).default("auto"))
    .option("--threads <n>", "ONNX Runtime CPU threads", parsePositiveInteger)
    .addOption(new Option("--channel-order <order>", "order of the frames' channels: rgb (the reference convention, the default) or bgr").choices(["rgb", "bgr"]))
    .option("--host <address>", "address to listen on; anything but loopback needs --token", "127.0.0.1")
    .option("--port <port>", "port (0: any free port)", parsePort, 8731)
    .addOption(new Option("--token <token>", "bearer token every request must carry (16+ characters)").env("ENDOSYNTH_TOKEN"))
    .option("--inflight <n>", "frames inferred at once", parsePositiveInteger, 2)
    .option("--queue <n>", "requests that may wait beyond those inferring (more get 503)", parseCount, 8)
    .option("--timeout <seconds>", "longest a request may take, upload included", parseNumber, 30)
    .option("--max-body <MiB>", "largest request body or WebSocket message", parseNumber, 64)
    .option("--range <min,max>", "default colour map range in metres", parseRange, [0.02, 0.2] as [number, number])
    .option("--fx <pixels>", "focal length along x for the viewer's point cloud (default: the frame width)", parseNumber)
    .option("--fy <pixels>", "focal length along y (default: fx)", parseNumber)
    .option("--cx <pixels>", "principal point column (default: the frame centre)", parseNumber)
    .option("--cy <pixels>", "principal point row (default: the frame centre)", parseNumber)
    .option("--json", "print the server's URL and model as one JSON object on stdout")
    .option("-q, --quiet", "no progress output");
}

function serveOptions(options: ServeCommandOptions): ServeOptions {
  const intrinsics = Object.fromEntries((["fx", "fy", "cx", "cy"] as const).filter((key) => options[key] !== undefined).map((key) => [key, options[key]]));
  return {
    host: options.host,
    port: options.port,
    inflight: options.inflight,
    queue: options.queue,
    timeoutMs: Math.round(options.timeout * 1000),
    maxBodyBytes: Math.round(options.maxBody * 2 ** 20),
    range: options.range,
    intrinsics,
    ...(options.token === undefined ? {} : { token: options.token }),
  };
}


/** A running server and its model, stopped together. */
export interface Serving {
  model: Model;
  server: DepthServer;
  /** Aborts on the first Ctrl-C or SIGTERM. */
  stopped: AbortSignal;
}

/**
 * Loads the model, starts the server, says where it is, and hands both to `work`; on Ctrl-C or
 * SIGTERM (or when `work` fails) closes the server and disposes of the model. A second Ctrl-C quits at once.
 */
export async function withServer(name: ModelName, options: ServeCommandOptions, work: (serving: Serving) => Promise<void>): Promise<void> {
  const server = serveOptions(options);
  // Checks the server options before the model loads, which can take minutes.
  checkServeOptions(server);
  const model = await loadForCommand(name, options);
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(INTERRUPTED_EXIT_CODE);
    if (!options.quiet) process.stderr.write("stopping: answering the requests in progress (Ctrl-C again to quit at once)\n");
    stop.abort();
  };
  process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
  let running: DepthServer | undefined;
  try {
    running = await serveDepth(model, server);
    const facts = { url: running.url, host: running.host, port: running.port, model: name, backend: model.backend, precision: model.precision };
    process.stdout.write(options.json ? `${JSON.stringify(facts)}\n` : `serving ${name} (${model.precision}) on ${model.backend} at ${running.url}\n`);
    if (!options.quiet) process.stderr.write(`${model.backendReason}\n`);
    await work({ model, server: running, stopped: stop.signal });
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    await running?.close();
    await model.dispose();
  }
}

/** Resolves when `signal` aborts. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}

/** Adds the `serve` command. */
export function registerServeCommand(program: Command): void {
  const command = program
    .command("serve")
    .description("serve depth over HTTP (POST /v1/depth) and WebSockets (/v1/stream), with the live viewer at /")
    .addArgument(program.createArgument("<model>", "the model").choices(MODEL_NAMES));
  addServerOptions(command).action((name: ModelName, options: ServeCommandOptions) =>
    withServer(name, options, async ({ stopped }) => {
      await untilAborted(stopped);
    }),
  );
}
