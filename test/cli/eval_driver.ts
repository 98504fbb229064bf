/**
 * `endosynth eval` with stand-in models instead of `load()`, run as a child process by
 * eval.test.ts: `node --import tsx eval_driver.ts eval <model...> <dataset> [options]`.
 * Models "scaled" and "shifted" (test/eval/helpers.ts) look each frame's ground truth up in the
 * dataset named by ENDOSYNTH_TEST_DATASET; ENDOSYNTH_TEST_LATENCY_MS slows every inference down so
 * a test can interrupt a run.
 */
import { Command, CommanderError } from "commander";
import { registerEvalCommand } from "../../lib/cli/eval.js";
import { listSamples } from "../../lib/eval/dataset.js";
import { readSample } from "../../lib/io/sample.js";
import { LookupModel, rgbKey, scaledPrediction, shiftedPrediction, type Truths } from "../eval/helpers.js";

const PREDICTORS: Record<string, (gt: number, pixel: number) => number> = { scaled: scaledPrediction, shifted: shiftedPrediction };
const latency = Number(process.env.ENDOSYNTH_TEST_LATENCY_MS ?? 0);

function truthsOf(dataset: string): Truths {
  const truths: Truths = new Map();
  for (const { id, path } of listSamples(dataset)) {
    try {
      const { rgb, depth, seg } = readSample(path);
      truths.set(rgbKey(rgb), { depth: depth.data as Float32Array, seg: seg.data, id });
    } catch {
      // Corrupt samples are the runner's to report.
    }
  }
  return truths;
}

const program = new Command("endosynth").exitOverride();
const standIns = async (name: string) => {
  const predict = PREDICTORS[name];
  const model = new LookupModel(name, truthsOf(process.env.ENDOSYNTH_TEST_DATASET ?? ""), predict);
  const infer = model.infer.bind(model);
  return Object.assign(model, {
    infer: async (frame: Parameters<typeof infer>[0]) => {
      await new Promise((resolve) => setTimeout(resolve, latency));
      return infer(frame);
    },
    dispose: async () => undefined,
  });
};
registerEvalCommand(program, standIns, Object.keys(PREDICTORS));
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exitCode = error.exitCode;
  else {
    process.stderr.write(`endosynth: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
