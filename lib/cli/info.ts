/**
 * `endosynth info [--models | --check-tensorrt <file.onnx>] [--json]`: versions of the package,
 * Node and sharp/libvips, the platform, where the platform's binaries were loaded from, which
 * inference backends can run here and why; with `--models`, the models: what they compute and where
 * their checkpoints are expected; with `--check-tensorrt`, whether TensorRT 10's ONNX parser can
 * import a model file, operator by operator (exit code 1 when it cannot).
 * @module
 */
import { existsSync } from "node:fs";
import { arch, cpus, platform, release, totalmem } from "node:os";
import type { Command } from "commander";
import { backendVerdicts, type BackendVerdict } from "../backends/registry.js";
import { loadNativeAddon } from "../backends/tensorrt/addon.js";
import { checkTensorRTSupport, type TensorRTSupportReport } from "../backends/tensorrt/onnx_support.js";
import { currentPlatform, platformPackage } from "../platform/package.js";
import { CommandOutput } from "./output.js";
import { checkpointPath } from "../model.js";
import { packageJson } from "../package_info.js";
import { modelSpecs } from "../models/registry.js";

/** Where the platform's binaries came from. */
export interface BinariesInfo {
  /** The platform as the binary packages name it, e.g. `linux-x64`. */
  platform: string;
  /** The binary package for it: found where, or why not. */
  platformPackage: { name: string; found: boolean; dir?: string; version?: string; reason?: string };
  /** The native addon (TensorRT): the file loaded, or why none was. */
  addon: { loaded: boolean; path?: string; reason?: string };
}

/** Everything `endosynth info` reports. */
export interface Info {
  package: { name: string; version: string };
  node: string;
  platform: { os: string; release: string; arch: string; cpus: number; memoryGiB: number };
  binaries: BinariesInfo;
  /** sharp (images), loaded only for this report; absent where it cannot load. */
  sharp: { version: string; libvips: string } | { error: string };
  backends: BackendVerdict[];
}

function binariesInfo(): BinariesInfo {
  const state = platformPackage();
  const addon = loadNativeAddon();
  return {
    platform: currentPlatform(),
    platformPackage: state.found
      ? { name: state.package.name, found: true, dir: state.package.dir, version: state.package.version }
      : { name: state.name, found: false, reason: state.reason },
    addon: addon.loaded ? { loaded: true, path: addon.path } : { loaded: false, reason: addon.reason },
  };
}

async function sharpInfo(): Promise<Info["sharp"]> {
  try {
    const { default: sharp } = await import("sharp");
    const versions = sharp.versions as { sharp?: string; vips: string };
    return { version: versions.sharp ?? "unknown", libvips: versions.vips };
  } catch (error) {
    return { error: (error as Error).message.split("\n")[0]! };
  }
}

/** Gathers the report. */
export async function collectInfo(): Promise<Info> {
  const { name, version } = packageJson();
  return {
    package: { name, version },
    node: process.versions.node,
    platform: { os: platform(), release: release(), arch: arch(), cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    binaries: binariesInfo(),
    sharp: await sharpInfo(),
    backends: backendVerdicts(),
  };
}

/** The report as aligned text lines. */
export function formatInfo(info: Info): string {
  const { platformPackage: binaryPackage, addon } = info.binaries;
  const rows: [string, string][] = [
    ["endosynth", info.package.version],
    ["node", info.node],
    ["platform", `${info.platform.os} ${info.platform.release} ${info.platform.arch}, ${info.platform.cpus} CPUs, ${info.platform.memoryGiB} GiB`],
    ["binaries", binaryPackage.found ? `${binaryPackage.name} ${binaryPackage.version} at ${binaryPackage.dir}` : `none: ${binaryPackage.reason}`],
    ["native addon", addon.loaded ? addon.path! : `not loaded: ${addon.reason}`],
    ["sharp", "error" in info.sharp ? `cannot load: ${info.sharp.error}` : `${info.sharp.version} (libvips ${info.sharp.libvips})`],
  ];
  for (const verdict of info.backends) rows.push([`backend ${verdict.backend}`, `${verdict.available ? "available" : "unavailable"}: ${verdict.reason}`]);
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
        `  checkpoint   ${model.checkpoint.expectedAt} (${model.checkpoint.present ? "present" : `missing: npx endosynth pull ${model.name}`})`,
      ].join("\n"),
    )
    .join("\n\n");
}

/** The readiness report as a table: one line per operator, then the verdict. */
export function formatTensorRTSupport(report: TensorRTSupportReport): string {
  const width = Math.max(...report.operators.map((verdict) => verdict.opType.length), 8);
  const lines = report.operators.map((verdict) => {
    const name = `${verdict.domain ? `${verdict.domain}.` : ""}${verdict.opType}`.padEnd(width);
    const verdictText = verdict.supported ? "supported" : `UNSUPPORTED: ${verdict.problems.join("; ")}`;
    return `  ${name}  ${String(verdict.count).padStart(5)}  ${verdict.types.join(", ").padEnd(24)}  ${verdictText}`;
  });
  const failing = report.operators.filter((verdict) => !verdict.supported).length;
  const summary = report.supported
    ? `TensorRT 10's ONNX parser can import ${report.file}: ${report.operators.length} operator types, all supported`
    : `TensorRT 10's ONNX parser cannot import ${report.file}: ${[...report.problems, ...(failing > 0 ? [`${failing} of ${report.operators.length} operator types unsupported`] : [])].join("; ")}`;
  return [
    `${report.file} (opset ${report.opset}) against ${report.matrix.release}, ${report.matrix.repository}/blob/${report.matrix.commit.slice(0, 12)}/${report.matrix.file}`,
    `  ${"operator".padEnd(width)}  ${"nodes".padStart(5)}  ${"types".padEnd(24)}  verdict`,
    ...lines,
    summary,
  ].join("\n");
}

interface InfoOptions {
  json?: boolean;
  quiet?: boolean;
  models?: boolean;
  checkTensorrt?: string;
}

/** Adds the `info` command. */
export function registerInfoCommand(program: Command): void {
  program
    .command("info")
    .description("print versions, platform and which backends can run here (--models: the models; --check-tensorrt: a model's TensorRT readiness)")
    .option("--models", "list the models: parameters, input size, output semantics, where the checkpoint is expected")
    .option("--check-tensorrt <file.onnx>", "check every operator and type of an ONNX file against TensorRT 10's ONNX support matrix (no GPU needed); exit code 1 if unsupported")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "with --check-tensorrt, only the verdict line (info prints nothing but its result)")
    .action(async (options: InfoOptions) => {
      const out = new CommandOutput(options);
      if (options.checkTensorrt !== undefined) {
        const report = checkTensorRTSupport(options.checkTensorrt);
        const text = formatTensorRTSupport(report);
        out.result(`${out.quiet ? text.slice(text.lastIndexOf("\n") + 1) : text}\n`, report);
        if (!report.supported) process.exitCode = 1;
        return;
      }
      if (options.models) {
        const models = collectModels();
        out.result(`${formatModels(models)}\n`, models);
        return;
      }
      const info = await collectInfo();
      out.result(`${formatInfo(info)}\n`, info);
    });
}
