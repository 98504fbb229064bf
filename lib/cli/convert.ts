/**
 * `endosynth convert <model> [--checkpoint f] [-o model.onnx] [--precision fp32|fp16]
 * [--channel-order rgb|bgr]`: the checkpoint to an ONNX model (weights in `<output>.data`) that any
 * ONNX runtime can run with the model's whole inference contract.
 * @module
 */
import { basename } from "node:path";
import { Option, type Command } from "commander";
import { checkpointPath } from "../model.js";
import { convertCheckpoint, type ChannelOrder, type Precision } from "../convert/convert.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import { addOutputOptions, type OutputOptions, refuseToOverwrite } from "./output.js";
import { PhaseProgress } from "./progress.js";

interface ConvertCommandOptions extends OutputOptions {
  checkpoint?: string;
  output?: string;
  precision: Precision;
  channelOrder: ChannelOrder;
}

function formatMillions(count: number): string {
  return `${(count / 1e6).toFixed(2)} M`;
}

async function runConvert(name: ModelName, options: ConvertCommandOptions): Promise<void> {
  const checkpoint = checkpointPath(name, options.checkpoint);
  const output = options.output ?? `${name}${options.precision === "fp16" ? "-fp16" : ""}.onnx`;
  refuseToOverwrite([output, `${output}.data`], options.overwrite);
  const progress = new PhaseProgress({ quiet: options.quiet });
  const report = await convertCheckpoint({
    model: name,
    checkpoint,
    output,
    precision: options.precision,
    channelOrder: options.channelOrder,
    onProgress: progress.onProgress,
  }).finally(() => progress.stop());
  const lines = [
    `converted ${basename(checkpoint)} (${name}) in ${report.seconds.toFixed(1)} s: ${formatMillions(report.parameters)} parameters, ${report.nodes} nodes, ${report.precision}, channel order ${report.channelOrder}`,
    ...report.files.map((file) => `  ${file}`),
  ];
  if (report.unusedKeys.length > 0) {
    lines.push(`${report.unusedKeys.length} checkpoint keys not used by inference:`);
    for (const unused of report.unusedKeys) lines.push(`  ${unused.key}: ${unused.reason}`);
  }
  if (report.droppedEntries.length > 0) {
    lines.push(`${report.droppedEntries.length} checkpoint entries left out (not tensors):`);
    for (const dropped of report.droppedEntries) lines.push(`  ${dropped.key}: ${dropped.type}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Adds the `convert` command. */
export function registerConvertCommand(program: Command): void {
  const command = program
    .command("convert")
    .description("convert a model's checkpoint to ONNX (uint8 [H, W, 3] frame in, float32 [H, W] metres out)")
    .addArgument(program.createArgument("<model>", "the model").choices(MODEL_NAMES))
    .option("-c, --checkpoint <file>", "checkpoint to convert (default: $ENDOSYNTH_CHECKPOINTS or ./checkpoints, <model>-f.pth)")
    .option("-o, --output <file>", "ONNX file to write; the weights go to <file>.data (default: <model>.onnx, or <model>-fp16.onnx for fp16)")
    .addOption(new Option("--precision <precision>", "fp32 for ONNX Runtime, fp16 for TensorRT").choices(["fp32", "fp16"]).default("fp32"))
    .addOption(
      new Option("--channel-order <order>", "order of the frames you will pass: rgb (the reference convention) or bgr")
        .choices(["rgb", "bgr"])
        .default("rgb"),
    );
  addOutputOptions(command, { overwriteHelp: "replace the ONNX file and its .data if they exist" }).action((name: ModelName, options: ConvertCommandOptions) =>
    runConvert(name, options),
  );
}
