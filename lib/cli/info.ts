/**
 * `endosynth info [--models] [--json]`: versions of the package, Node, sharp/libvips and ONNX
 * Runtime, the platform, which inference backends can run here; with `--models`, the models: what
 * they compute and where their checkpoints are expected.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, cpus, platform, release, totalmem } from "node:os";
import type { Command } from "commander";
import sharp from "sharp";
import type { BackendName } from "../backends/backend.js";
import { tensorrtStatus } from "../backends/tensorrt/index.js";
import { checkpointPath } from "../model.js";
import { packageJson } from "../package_info.js";
import { modelSpecs } from "../models/registry.js";

/** Whether one backend can run here, and if not, why. */
export interface BackendStatus {
  backend: BackendName;
  available: boolean;
  /** Version of the runtime, or why it cannot run. */
  detail: string;
}

/** Everything `endosynth info` reports. */
export interface Info {
  package: { name: string; version: string };
  node: string;
  platform: { os: string; release: string; arch: string; cpus: number; memoryGiB: number };
  sharp: { version: string; libvips: string };
  onnxruntimeNode: string | null;
  backends: BackendStatus[];
}

const require = createRequire(import.meta.url);

function readJson(path: string): { name: string; version: string } {
  return JSON.parse(readFileSync(path, "utf8")) as { name: string; version: string };
}


/** The installed onnxruntime-node's version, read from its package.json without loading the native runtime. */
function onnxruntimeNodeVersion(): string | null {
  try {
    return readJson(require.resolve("onnxruntime-node/package.json")).version;
  } catch {
    return null;
  }
}

async function onnxRuntimeStatus(): Promise<BackendStatus> {
  try {
    await import("onnxruntime-node");
    return { backend: "onnxruntime", available: true, detail: `onnxruntime-node ${onnxruntimeNodeVersion()}, CPU execution provider` };
  } catch (error) {
    return { backend: "onnxruntime", available: false, detail: `onnxruntime-node cannot load: ${(error as Error).message}` };
  }
}

function tensorRTStatusLine(): BackendStatus {
  const status = tensorrtStatus();
  return { backend: "tensorrt", available: status.available, detail: status.reason };
}

/** Which inference backends can run on this machine, and if not, why. */
export async function backendAvailability(): Promise<BackendStatus[]> {
  return [await onnxRuntimeStatus(), tensorRTStatusLine()];
}

/** Gathers the report. */
export async function collectInfo(): Promise<Info> {
  const { name, version } = packageJson();
  const versions = sharp.versions as { sharp?: string; vips: string };
  return {
    package: { name, version },
    node: process.versions.node,
    platform: { os: platform(), release: release(), arch: arch(), cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    sharp: { version: versions.sharp ?? "unknown", libvips: versions.vips },
    onnxruntimeNode: onnxruntimeNodeVersion(),
    backends: await backendAvailability(),
  };
}

/** The report as aligned text lines. */
export function formatInfo(info: Info): string {
  const rows: [string, string][] = [
    ["endosynth", info.package.version],
    ["node", info.node],
    ["platform", `${info.platform.os} ${info.platform.release} ${info.platform.arch}, ${info.platform.cpus} CPUs, ${info.platform.memoryGiB} GiB`],
    ["sharp", `${info.sharp.version} (libvips ${info.sharp.libvips})`],
    ["onnxruntime-node", info.onnxruntimeNode ?? "not installed"],
  ];
  for (const status of info.backends) rows.push([`backend ${status.backend}`, `${status.available ? "available" : "unavailable"}: ${status.detail}`]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}

/** What `endosynth info --models` reports of one model. */
export interface ModelInfo {
  name: string;
  architecture: string;
  parameters: number;
  input: { height: number; width: number };
  output: string;
  postprocess: string;
  checkpoint: { expectedAt: string; present: boolean; url: string };
}

/** The registry's models, with where each checkpoint is expected here and whether it is there. */
export function collectModels(): ModelInfo[] {
  return modelSpecs().map((spec) => {
    const expectedAt = checkpointPath(spec.name);
    return {
      name: spec.name,
      architecture: spec.architecture,
      parameters: spec.parameters,
      input: { ...spec.input },
      output: spec.description,
      postprocess: spec.postprocess,
      checkpoint: { expectedAt, present: existsSync(expectedAt), url: spec.checkpointUrl },
    };
  });
}

/** The models as text blocks. */
export function formatModels(models: readonly ModelInfo[]): string {
  return models
    .map((model) =>
      [
        `${model.name}  ${model.architecture}`,
        `  parameters   ${(model.parameters / 1e6).toFixed(2)} M`,
        `  input        any uint8 [H, W, 3] frame, resized to ${model.input.height}x${model.input.width}`,
        `  output       ${model.output}: ${model.postprocess}`,
        `  checkpoint   ${model.checkpoint.expectedAt} (${model.checkpoint.present ? "present" : `missing: download ${model.checkpoint.url}`})`,
      ].join("\n"),
    )
    .join("\n\n");
}

/** Adds the `info` command. */
export function registerInfoCommand(program: Command): void {
  program
    .command("info")
    .description("print versions, platform and which backends can run here (--models: the models)")
    .option("--models", "list the models: parameters, input size, output semantics, where the checkpoint is expected")
    .option("--json", "print machine-readable JSON")
    .action(async (options: { json?: boolean; models?: boolean }) => {
      const report = options.models ? collectModels() : await collectInfo();
      const text = options.models ? formatModels(report as ModelInfo[]) : formatInfo(report as Info);
      process.stdout.write(`${options.json ? JSON.stringify(report, null, 2) : text}\n`);
    });
}
