import test from "ava";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { writePth } from "../support/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../support/random_state_dict.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { MIDAS_ALPHA } from "../../lib/models/midas.js";
import { MAX_DEPTH } from "../../lib/models/blocks/postprocess.js";
import { modelSpec } from "../../lib/models/registry.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";

/**
 * Keeps ONNX Runtime from folding the 24 gathered [16, 1197, 1197] relative position biases into
 * constants when the session opens (2.2 GB more memory and 4-15 s more to open on 2 cores), which
 * would take this test past 4 GB.
 */
const NO_LARGE_FOLDING = { optimization: { constant_folding_max_output_size_in_bytes: String(64 * 2 ** 20) } };

test("midas keys_full.json: a random 1.4 GB checkpoint converts with every key consumed or unused on purpose, and runs", async (t) => {
  const keysJson = JSON.parse(readFileSync(fixture("midas", "keys_full.json"), "utf8")) as KeysJson & { num_elements: number };
  const dir = tempDir(t);
  let peakRss = 0;
  const sample = (): void => void (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  const sampler = setInterval(sample, 100);
  t.teardown(() => clearInterval(sampler));

  // Streamed: one tensor at a time is generated and written.
  const checkpoint = join(dir, "midas-random.pth");
  const written = writePth(checkpoint, randomStateDictFromKeys(keysJson, 11));
  t.is(written.parameters, keysJson.num_elements);
  t.is(modelSpec("midas").parameters, keysJson.num_elements);
  sample();

  const output = join(dir, "midas.onnx");
  const report = await convertCheckpoint({ model: "midas", checkpoint, output, onProgress: sample });
  const sizes = new Map(keysJson.keys.map((k) => [k.key, k.shape.reduce((a, b) => a * b, 1)]));
  const accounted = [...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)];
  t.deepEqual([...accounted].sort(), [...sizes.keys()].sort());
  t.deepEqual(
    report.unusedKeys.map((u) => u.key).sort(),
    [
      ...["fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"].map((name) => `pretrained.model.${name}`),
      ...["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"].map((name) => `scratch.refinenet4.resConfUnit1.${name}`),
    ].sort(),
  );
  t.is(report.parameters, report.consumedKeys.reduce((sum, key) => sum + sizes.get(key)!, 0));
  const dataBytes = statSync(`${output}.data`).size;
  t.log(`${report.consumedKeys.length} keys / ${(report.parameters / 1e6).toFixed(2)} M elements consumed, ${report.unusedKeys.length} unused, ${report.nodes} nodes, ${report.seconds.toFixed(1)} s, ${(dataBytes / 2 ** 30).toFixed(2)} GiB of weights`);
  t.log(`peak RSS through conversion: ${(peakRss / 2 ** 30).toFixed(2)} GiB`);
  // The tables, index and weights the graph keeps are the consumed parameters plus < 20 MB.
  t.true(dataBytes < 4 * report.parameters + 20e6);

  // The network input is 420x742 whatever the frame; a small frame keeps pre/post-processing cheap.
  const height = 96;
  const width = 128;
  const frame = Uint8Array.from({ length: height * width * 3 }, (_, i) => (i * 7919) % 251);
  const session = await ort.InferenceSession.create(output, { logSeverityLevel: 3, extra: NO_LARGE_FOLDING } as ort.InferenceSession.SessionOptions);
  t.teardown(() => void session.release());
  const { depth } = await session.run({ rgb: new ort.Tensor("uint8", frame, [height, width, 3]) });
  sample();
  t.log(`peak RSS with the model open and run: ${(peakRss / 2 ** 30).toFixed(2)} GiB`);
  t.deepEqual(depth.dims, [height, width]);
  // 70000 / (1/0.3 + (1/0.001 - 1/0.3) * disp) with disp >= 0 (the head ends in a ReLU) lies in (0, 70000 * 0.3].
  t.true((depth.data as Float32Array).every((d) => d > 0 && d <= MIDAS_ALPHA * MAX_DEPTH * (1 + 1e-6)));
  t.true(peakRss < 6 * 2 ** 30);
});
