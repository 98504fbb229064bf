/**
 * `endosynth viz <sample.npz> [-o out.png]`: the sample picture [rgb | segmentation | depth].
 * `--demo` first writes a synthetic sample (so the command works on a fresh machine).
 * @module
 */
import { basename, extname, join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { InputError } from "../errors.js";
import { readSample, writeSample } from "../io/sample.js";
import { syntheticSample } from "../io/synthetic_sample.js";
import { sample2png } from "../viz/sample2png.js";
import { addOutputOptions, CommandOutput, type OutputOptions, refuseToOverwrite } from "./output.js";

/** Where the picture of a sample goes by default: beside it, `.npz` replaced by `.png`. */
export function defaultPicturePath(samplePath: string): string {
  const extension = extname(samplePath);
  const stem = extension === ".npz" ? samplePath.slice(0, -extension.length) : samplePath;
  return `${stem}.png`;
}

const DEMO_SAMPLE = "endosynth-demo.npz";

function parseLevel(value: string): number {
  const level = Number(value);
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new InvalidArgumentError("expected an integer from 0 to 9");
  return level;
}

interface VizOptions extends OutputOptions {
  output?: string;
  demo?: boolean;
  compressionLevel?: number;
}

async function viz(sample: string | undefined, options: VizOptions): Promise<void> {
  const samplePath = sample ?? (options.demo ? join(process.cwd(), DEMO_SAMPLE) : undefined);
  if (samplePath === undefined) throw new InputError("missing <sample.npz> (or pass --demo to make a synthetic one)");
  const output = options.output ?? defaultPicturePath(samplePath);
  refuseToOverwrite([...(options.demo ? [samplePath] : []), output], options.overwrite);
  const out = new CommandOutput(options);
  const lines: string[] = [];
  if (options.demo) {
    writeSample(samplePath, syntheticSample());
    lines.push(`wrote synthetic sample ${samplePath}`);
  }
  await sample2png(readSample(samplePath), output, options.compressionLevel === undefined ? {} : { compressionLevel: options.compressionLevel });
  lines.push(`wrote ${output} (${basename(samplePath)}: rgb | segmentation | depth)`);
  if (!out.quiet) process.stdout.write(`${lines.join("\n")}\n`);
}

/** Adds the `viz` command. */
export function registerVizCommand(program: Command): void {
  const command = program
    .command("viz")
    .description("draw an EndoSynth sample as a PNG: [rgb | segmentation over rgb | depth colormap]")
    .argument("[sample]", "EndoSynth sample (.npz with rgb, depth, seg); the file to create with --demo")
    .option("-o, --output <png>", "where to write the picture (default: beside the sample, .png)")
    .option("--demo", `first write a synthetic 1080x1920 sample (default ./${DEMO_SAMPLE})`)
    .option("--compression-level <0-9>", "PNG zlib level (lossless either way; default 3)", parseLevel);
  addOutputOptions(command, { overwriteHelp: "replace the picture (and, with --demo, the sample) if it exists" }).action(viz);
}
