/**
 * A child process for crash tests: `convert.ts <model> <checkpoint> <output> <precision>` converts, prints
 * "converted" and exits. Tests kill it at random instants.
 */
import { convertCheckpoint } from "../../../lib/convert/convert.js";
import type { ModelName } from "../../../lib/models/registry.js";
import type { Precision } from "../../../lib/convert/options.js";

const [model, checkpoint, output, precision] = process.argv.slice(2);
await convertCheckpoint({ model: model as ModelName, checkpoint: checkpoint!, output: output!, precision: precision as Precision });
process.stdout.write("converted\n");
