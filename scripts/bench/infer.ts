/**
 * ONNX Runtime (CPU) inference benchmark (`npm run bench -- infer`): a full-size Depth Anything v1
 * converted from a random state dict with exactly keys_full.json's keys, run on a 1080x1920 RGB
 * frame. Cases:
 *
 * - first inference: open the model in the ONNX Runtime backend (worker thread) and run one frame;
 * - steady state through the backend (worker thread, buffer transfers included) and with
 *   onnxruntime-node directly on this thread;
 * - the network alone (its [1, 3, 420, 742] input given), and the pre- and post-processing
 *   subgraphs alone: what the contract costs outside the network.
 *
 * Target (issue 3): pre/post-processing + copies < 10% of the network time.
 *
 * Then dav2, endodac and midas (issue 4) through the backend, steady state. MiDaS (345 M parameters,
 * ~7 s a frame on 2 idle cores: run with `--runs 3 --warmup 1`) also runs directly with ONNX
 * Runtime's default constant folding, which turns the 24 gathered [16, 1197, 1197] relative
 * position biases into 2.2 GB of constants when the session opens; the backend limits folding to
 * 64 MiB per node (the biases are gathered every frame). The summary gives each session's open
 * time and RSS, and the event loop's worst delay while the backend was inferring (target < 20 ms).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { openOnnxRuntime, type OnnxRuntimeSession } from "../../lib/backends/onnxruntime/session.js";
import { randomStateDictFromKeys, type KeysJson } from "../../test/support/random_state_dict.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { depthAnythingNetwork } from "../../lib/models/depth_anything.js";
import { depthAnythingV1Metres, depthOutput, resizeToInput } from "../../lib/models/blocks/postprocess.js";
import { IMAGENET_NORMALISATION, imageInput, preprocess } from "../../lib/models/blocks/preprocess.js";
import { modelSpec } from "../../lib/models/registry.js";
import { Weights } from "../../lib/models/weights.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { Graph } from "../../lib/onnx/graph.js";
import { writeOnnx } from "../../lib/onnx/writer.js";
import type { BenchCase, Suite } from "./harness.js";

const self = fileURLToPath(import.meta.url);
const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(self, "../../../../shared/fixtures"));
const FRAME = { height: 1080, width: 1920 } as const;
const { height: NET_HEIGHT, width: NET_WIDTH } = modelSpec("dav1").input;
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  interOpNumThreads: 1,
  logSeverityLevel: 3,
};

/** A deterministic frame with image-like structure (smooth gradients plus texture). */
function syntheticFrame(): NdArray<"uint8"> {
  const { height, width } = FRAME;
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (128 + 100 * Math.sin(x / 97) * Math.cos(y / 53)) & 255;
      data[i + 1] = (x * 255) / width;
      data[i + 2] = ((y * 255) / height) ^ ((x * y) & 15);
    }
  }
  return { data, shape: [height, width, 3], dtype: "uint8" };
}

/** The network alone: the normalised image in, the head's raw output out. */
function networkGraph(weights: Weights): Graph {
  const g = new Graph("dav1_network");
  const image = g.input("image", "float32", [1, 3, NET_HEIGHT, NET_WIDTH]);
  g.output(depthAnythingNetwork(g, weights, "v1", image, NET_HEIGHT, NET_WIDTH), "raw");
  return g;
}

/** The pre-processing alone: frame → normalised network input. */
function preprocessGraph(): Graph {
  const g = new Graph("dav1_preprocess");
  const image = preprocess(g, imageInput(g), { height: NET_HEIGHT, width: NET_WIDTH, normalisation: IMAGENET_NORMALISATION, channelOrder: "rgb" });
  g.output(image, "image");
  return g;
}

/** The post-processing alone: raw network output (and the frame, for its size) → metres at the frame's size. */
function postprocessGraph(): Graph {
  const g = new Graph("dav1_postprocess");
  const rgb = imageInput(g);
  const raw = g.input("raw", "float32", [1, 1, NET_HEIGHT, NET_WIDTH]);
  depthOutput(g, resizeToInput(g, depthAnythingV1Metres(g, raw), rgb));
  return g;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A case that also records its own durations, for the summary. */
function timedCase(name: string, timings: Map<string, number[]>, run: () => Promise<unknown>): BenchCase {
  timings.set(name, []);
  return {
    name,
    run: async () => {
      const start = performance.now();
      await run();
      timings.get(name)!.push(performance.now() - start);
    },
  };
}

let workDir: string | undefined;
const sessions: { release(): Promise<void> }[] = [];
const backends: OnnxRuntimeSession[] = [];
const timings = new Map<string, number[]>();
const openings: string[] = [];
const NAMES = {
  first: "first inference: open backend + 1 frame",
  backend: "steady state, backend (worker thread)",
  direct: "steady state, onnxruntime-node direct",
  network: "network only (1x3x420x742 in)",
  pre: "pre-processing only (1080x1920 frame)",
  post: "post-processing only (to 1080x1920)",
  dav2: "dav2: steady state, backend (worker thread)",
  endodac: "endodac: steady state, backend (worker thread)",
  midas: "midas: steady state, backend (worker thread, biases gathered)",
  midasFolded: "midas: steady state, onnxruntime-node direct (biases folded)",
} as const;

/** Converts a full-size random model (keys_full.json) into `dir` and returns the model's path. */
async function convertRandom(model: "dav2" | "endodac" | "midas", dir: string): Promise<string> {
  const keys = JSON.parse(readFileSync(join(fixtures, model, "keys_full.json"), "utf8")) as KeysJson;
  const output = join(dir, `${model}.onnx`);
  await convertCheckpoint({ model, stateDict: new Map(randomStateDictFromKeys(keys, 1)), output });
  return output;
}

/** The event loop's delay while the backend infers: it must keep turning (target < 20 ms stalls). */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });

/** Opens a model in the backend, recording how long it took and the RSS it left. */
async function openBackendTimed(label: string, path: string): Promise<OnnxRuntimeSession> {
  const start = performance.now();
  const session = await openOnnxRuntime(path);
  openings.push(`${label}: backend opened in ${((performance.now() - start) / 1000).toFixed(1)} s, RSS after ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
  backends.push(session);
  return session;
}

/** Opens a model directly, recording how long the session took to open and the RSS it left. */
async function openTimed(label: string, path: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const start = performance.now();
  const session = await ort.InferenceSession.create(path, options);
  openings.push(`${label}: opened in ${((performance.now() - start) / 1000).toFixed(1)} s, RSS after ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
  sessions.push(session);
  return session;
}

/** The `infer` suite. */
export const inferSuite: Suite = {
  description: "ONNX Runtime CPU: full-size dav1, dav2, endodac and midas (random weights, keys_full.json) on a 1080x1920 frame",
  setup: async () => {
    workDir = mkdtempSync(join(tmpdir(), "endosynth-bench-infer-"));
    const keys = JSON.parse(readFileSync(join(fixtures, "dav1", "keys_full.json"), "utf8")) as KeysJson;
    const stateDict = new Map(randomStateDictFromKeys(keys, 1));
    const modelPath = join(workDir, "dav1.onnx");
    await convertCheckpoint({ model: "dav1", stateDict, output: modelPath });
    const paths = { network: join(workDir, "network.onnx"), pre: join(workDir, "pre.onnx"), post: join(workDir, "post.onnx") };
    await writeOnnx(networkGraph(new Weights(stateDict)), paths.network);
    await writeOnnx(preprocessGraph(), paths.pre);
    await writeOnnx(postprocessGraph(), paths.post);

    const frame = syntheticFrame();
    const rgb = new ort.Tensor("uint8", frame.data, [...frame.shape]);
    const open = async (path: string): Promise<ort.InferenceSession> => {
      const session = await ort.InferenceSession.create(path, SESSION_OPTIONS);
      sessions.push(session);
      return session;
    };
    const [direct, network, pre, post] = await Promise.all([open(modelPath), open(paths.network), open(paths.pre), open(paths.post)]);
    const image = new ort.Tensor("float32", new Float32Array(3 * NET_HEIGHT * NET_WIDTH).fill(0.5), [1, 3, NET_HEIGHT, NET_WIDTH]);
    const raw = new ort.Tensor("float32", new Float32Array(NET_HEIGHT * NET_WIDTH).fill(1.5), [1, 1, NET_HEIGHT, NET_WIDTH]);
    const backend = await openBackendTimed("dav1", modelPath);
    const others = {
      dav2: await openBackendTimed("dav2", await convertRandom("dav2", workDir)),
      endodac: await openBackendTimed("endodac", await convertRandom("endodac", workDir)),
      midas: await openBackendTimed("midas (folding limited to 64 MiB)", await convertRandom("midas", workDir)),
    };
    const midasFolded = await openTimed("midas, ONNX Runtime's default folding", join(workDir, "midas.onnx"), SESSION_OPTIONS);

    return [
      timedCase(NAMES.first, timings, async () => {
        const session = await openOnnxRuntime(modelPath);
        await session.run(frame);
        await session.dispose();
      }),
      timedCase(NAMES.backend, timings, async () => {
        loopDelay.enable();
        await backend.run(frame);
        loopDelay.disable();
      }),
      timedCase(NAMES.direct, timings, () => direct.run({ rgb })),
      timedCase(NAMES.network, timings, () => network.run({ image })),
      timedCase(NAMES.pre, timings, () => pre.run({ rgb })),
      timedCase(NAMES.post, timings, () => post.run({ rgb, raw })),
      timedCase(NAMES.dav2, timings, () => others.dav2.run(frame)),
      timedCase(NAMES.endodac, timings, () => others.endodac.run(frame)),
      timedCase(NAMES.midas, timings, () => others.midas.run(frame)),
      timedCase(NAMES.midasFolded, timings, () => midasFolded.run({ rgb })),
    ];
  },
  cleanup: () => {
    const of = (name: string): number | undefined => {
      const values = timings.get(name);
      return values && values.length > 0 ? median(values) : undefined;
    };
    const [whole, network, pre, post, viaBackend] = [of(NAMES.direct), of(NAMES.network), of(NAMES.pre), of(NAMES.post), of(NAMES.backend)];
    if (whole !== undefined && network !== undefined && pre !== undefined && post !== undefined && viaBackend !== undefined) {
      const percent = (ms: number): string => `${((100 * ms) / network).toFixed(1)}%`;
      console.log(
        `outside the network (medians, recorded runs incl. warm-up): pre ${pre.toFixed(1)} ms + post ${post.toFixed(1)} ms = ${percent(pre + post)} of the network's ${network.toFixed(0)} ms; ` +
          `whole graph - network = ${percent(whole - network)}; backend worker overhead = ${percent(viaBackend - whole)} (target: all < 10%)`,
      );
    }
    for (const line of openings) console.log(line);
    if (loopDelay.count > 0) {
      console.log(`event loop while the backend inferred dav1: max delay ${(loopDelay.max / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms (target < 20 ms)`);
    }
    for (const session of backends) void session.dispose();
    for (const session of sessions) void session.release();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  },
};
