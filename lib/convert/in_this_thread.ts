/**
 * The conversion itself, in the calling thread: read the checkpoint, check it is the model named,
 * build the graph, write the ONNX. convert.ts runs it in a worker for checkpoint files.
 * @module
 */
import { AbortError, CheckpointError, InputError } from "../errors.js";
import { readStateDict, type DroppedEntry } from "../checkpoint/state_dict.js";
import { Graph } from "../onnx/graph.js";
import { toFloat16 } from "../onnx/fp16_pass.js";
import { writeOnnx, type OnnxGraph } from "../onnx/writer.js";
import { modelSpec, recognizeArchitectures, type ModelSpec } from "../models/registry.js";
import { Weights } from "../models/weights.js";
import type { ConversionReport, ConvertOptions } from "./options.js";
import { converterVersion } from "./version.js";

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("The conversion was aborted");
}

/**
 * Refuses a checkpoint of another architecture before any shape check: "this checkpoint looks like
 * endodac", not an error about some tensor deep inside a builder.
 */
function assertArchitecture(spec: ModelSpec, keys: readonly string[], file: string | undefined): void {
  if (spec.recognize(keys) !== undefined) return;
  const others = recognizeArchitectures(keys);
  const where = file ? `The checkpoint ${file}` : "The state dict";
  if (others.length > 0) {
    const [first] = others;
    throw new CheckpointError(
      `${where} looks like ${others.map((o) => o.name).join(" or ")}, not ${spec.name}: ${first.evidence}. ` +
        `Convert it as ${first.name}, or pass the ${spec.checkpointFile} checkpoint for ${spec.name}.`,
      { file, key: first.evidence.replace(/^it has the key /, "") },
    );
  }
  if (keys.length === 0) throw new CheckpointError(`${where} has no tensors`, { file });
}

/** The graph with its network body (between the builder's "preprocessed" and "raw" stages) in float16. */
function float16Body(graph: Graph): OnnxGraph {
  const input = graph.stage("preprocessed");
  const output = graph.stage("raw");
  if (!input || !output) throw new InputError(`The ${graph.name} builder marks no "preprocessed" and "raw" stages: it cannot be converted to fp16`, { key: "options.precision" });
  return toFloat16(graph, { input, output });
}

/**
 * {@link convertCheckpoint}'s work, in the calling thread, on validated options.
 * @internal
 */
export async function convertInThisThread(options: ConvertOptions): Promise<ConversionReport> {
  const started = performance.now();
  const spec = modelSpec(options.model);
  const channelOrder = options.channelOrder ?? "rgb";
  const precision = options.precision ?? "fp32";
  const { onProgress, signal } = options;

  let stateDict = options.stateDict;
  let droppedEntries: DroppedEntry[] = [];
  if (!stateDict) {
    onProgress?.({ phase: "reading checkpoint", detail: options.checkpoint });
    const checkpoint = await readStateDict(options.checkpoint!);
    stateDict = checkpoint.stateDict;
    droppedEntries = [...checkpoint.info.dropped];
  }
  throwIfAborted(signal);
  assertArchitecture(spec, [...stateDict.keys()], options.checkpoint);

  onProgress?.({ phase: "building graph", detail: spec.architecture });
  const graph = new Graph(spec.name);
  const weights = new Weights(stateDict, options.checkpoint);
  spec.build(graph, weights, { channelOrder });
  const usage = weights.finish();
  throwIfAborted(signal);
  const written = precision === "fp16" ? float16Body(graph) : graph;

  const files = await writeOnnx(written, options.output, {
    metadata: {
      model: spec.name,
      converter_version: converterVersion(),
      channel_order: channelOrder,
      precision,
      input: "rgb: uint8 [H, W, C], C = 3 or 4 (alpha ignored)",
      output: `depth: float32 [H, W], ${spec.description}`,
    },
    docString: `${spec.architecture}. Post-processing: ${spec.postprocess}.`,
    onProgress,
    signal,
  });
  return {
    model: spec.name,
    files: files.data ? [files.model, files.data] : [files.model],
    parameters: usage.parameters,
    consumedKeys: usage.consumed,
    unusedKeys: usage.unused,
    droppedEntries,
    nodes: written.nodes.length,
    channelOrder,
    precision,
    seconds: (performance.now() - started) / 1000,
  };
}
