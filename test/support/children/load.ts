/**
 * A child process for crash and concurrency tests: `load.ts <model> <checkpoint> <cacheDir>` loads
 * the model on ONNX Runtime through the cache, infers one small frame, prints the depth's first
 * value and exits. Tests run several at once on one cache, and kill some at random instants.
 */
import { load } from "../../../lib/model.js";
import { ndarray } from "../../../lib/ndarray/ndarray.js";
import type { ModelName } from "../../../lib/models/registry.js";

const [model, checkpoint, cacheDir] = process.argv.slice(2);
const loaded = await load(model as ModelName, { checkpoint: checkpoint!, cacheDir: cacheDir!, backend: "onnxruntime", threads: 1 });
const frame = ndarray(new Uint8Array(32 * 48 * 3).map((_, i) => (i * 7) % 256), [32, 48, 3], "uint8");
const depth = await loaded.infer(frame);
await loaded.dispose();
process.stdout.write(`${depth.data[0]}\n`);
