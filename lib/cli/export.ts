/**
 * `endosynth export triton <model...> <dir>`: a Triton Inference Server model repository of the
 * converted models (lib/export/triton.ts), each with an ONNX Runtime config and, on GPUs, a
 * TensorRT-accelerated one.
 * @module
 */
import { join } from "node:path";
import { Option, type Command } from "commander";
import { InputError } from "../errors.js";
import { exportTriton, type TritonExport } from "../export/triton.js";
import type { Precision } from "../convert/options.js";
import { MODEL_NAMES, modelSpec, type ModelName } from "../models/registry.js";
import { parsePositiveInteger } from "./arguments.js";
import { addOutputOptions, CommandOutput, type OutputOptions } from "./output.js";
import { PhaseProgress } from "./progress.js";

interface ExportCommandOptions extends OutputOptions {
  checkpoint: string[];
  checkpoints?: string;
  precision: Precision;
  instances: number;
  cpu?: boolean;
}

/** `-c dav1=path` (or a bare path when one model is exported), collected over repeated flags. */
function collectCheckpoint(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Each model's checkpoint from `-c model=path` flags and `--checkpoints <dir>`. */
function checkpointsFor(models: readonly ModelName[], options: ExportCommandOptions): Partial<Record<ModelName, string>> {
  const checkpoints: Partial<Record<ModelName, string>> = {};
  if (options.checkpoints) {
    for (const model of models) checkpoints[model] = join(options.checkpoints, modelSpec(model).checkpointFile);
  }
  for (const flag of options.checkpoint) {
    const equals = flag.indexOf("=");
    const model = equals > 0 ? flag.slice(0, equals) : models.length === 1 ? models[0] : undefined;
    if (model === undefined) throw new InputError(`-c ${flag}: with several models, name the model (-c dav1=path)`);
    if (!models.includes(model as ModelName)) throw new InputError(`-c ${flag}: ${model} is not one of the models exported (${models.join(", ")})`);
    checkpoints[model as ModelName] = equals > 0 ? flag.slice(equals + 1) : flag;
  }
  return checkpoints;
}

function summary(result: TritonExport): string {
  const lines = [`wrote the Triton model repository ${result.output} in ${result.seconds.toFixed(1)} s (${result.precision}):`];
  for (const folder of result.folders) {
    lines.push(`  ${folder.name.padEnd(12)} ${folder.accelerator === "tensorrt" ? "ONNX Runtime + TensorRT (FP16)" : "ONNX Runtime"}  ${folder.input.name} ${folder.input.dataType} [${folder.input.dims.join(", ")}] -> ${folder.output.name} ${folder.output.dataType} [${folder.output.dims.join(", ")}]`);
  }
  lines.push(`serve it with: tritonserver --model-repository ${result.output}`);
  return `${lines.join("\n")}\n`;
}

async function runExport(models: string[], dir: string, options: ExportCommandOptions): Promise<void> {
  const unknown = models.filter((model) => !(MODEL_NAMES as readonly string[]).includes(model));
  if (unknown.length > 0) throw new InputError(`unknown model ${unknown.join(", ")} (choose from ${MODEL_NAMES.join(", ")})`);
  const names = models as ModelName[];
  const out = new CommandOutput(options);
  const progress = new PhaseProgress({ quiet: options.quiet });
  const result = await exportTriton({
    models: names,
    output: dir,
    checkpoints: checkpointsFor(names, options),
    precision: options.precision,
    instances: options.instances,
    device: options.cpu ? "cpu" : "gpu",
    overwrite: options.overwrite ?? false,
    onProgress: progress.onProgress,
  }).finally(() => progress.stop());
  out.result(summary(result), result);
}

/** Adds `export triton`. */
export function registerExportCommand(program: Command): void {
  const exporter = program.command("export").description("write the models in a form other servers run");
  const command = exporter
    .command("triton")
    .description("write a Triton Inference Server model repository (ONNX Runtime, and TensorRT-accelerated on GPUs)")
    .argument("<models...>", `the models, then the repository folder (models: ${MODEL_NAMES.join(", ")})`)
    .option("-c, --checkpoint <model=file>", "a model's checkpoint (repeatable; a bare file when exporting one model)", collectCheckpoint, [])
    .option("--checkpoints <dir>", "folder holding <model>-f.pth (default: $ENDOSYNTH_CHECKPOINTS or ./checkpoints)")
    .addOption(new Option("--precision <precision>", "precision of the network body").choices(["fp32", "fp16"]).default("fp32"))
    .option("--instances <n>", "copies of each model Triton runs at once (instance_group count)", parsePositiveInteger, 1)
    .option("--cpu", "instances on the CPU (KIND_CPU), without the TensorRT variants");
  addOutputOptions(command, { json: true, overwriteHelp: "replace the repository folder if it exists" }).action((args: string[], options: ExportCommandOptions) => {
    if (args.length < 2) throw new InputError("give at least one model and the repository folder: endosynth export triton dav1 models/");
    return runExport(args.slice(0, -1), args[args.length - 1], options);
  });
}
