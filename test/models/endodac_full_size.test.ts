import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writePth } from "../support/pth_writer.js";
import { randomStateDictFromKeys, type KeysJson } from "../support/random_state_dict.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { modelSpec } from "../../lib/models/registry.js";
import { fixture } from "../support/fixtures.js";
import { tempDir } from "../onnx/helpers.js";
import { runModelFile } from "./helpers.js";

test("endodac keys_full.json: a random full-size checkpoint converts with every key consumed or unused on purpose, and runs", async (t) => {
  const keysJson = JSON.parse(readFileSync(fixture("endodac", "keys_full.json"), "utf8")) as KeysJson & { num_elements: number };
  const dir = tempDir(t);
  const checkpoint = join(dir, "endodac-random.pth");
  const written = writePth(checkpoint, randomStateDictFromKeys(keysJson, 7));
  t.is(written.parameters, keysJson.num_elements);
  t.is(modelSpec("endodac").parameters, keysJson.num_elements);

  const output = join(dir, "endodac.onnx");
  const report = await convertCheckpoint({ model: "endodac", checkpoint, output });
  const sizes = new Map(keysJson.keys.map((k) => [k.key, k.shape.reduce((a, b) => a * b, 1)]));
  const accounted = [...report.consumedKeys, ...report.unusedKeys.map((u) => u.key)];
  t.deepEqual([...accounted].sort(), [...sizes.keys()].sort());
  // keys_full.json is exactly the model's state dict: nothing in it may be taken for a dropped extra.
  t.deepEqual(report.unusedKeys.filter((u) => /drops it/.test(u.reason)), []);
  t.is(report.unusedKeys.length, 23);
  t.is(report.parameters, report.consumedKeys.reduce((sum, key) => sum + sizes.get(key)!, 0));
  t.log(`${report.consumedKeys.length} keys / ${(report.parameters / 1e6).toFixed(2)} M elements consumed, ${report.unusedKeys.length} unused, ${report.nodes} nodes, ${report.seconds.toFixed(1)} s`);

  const height = 270;
  const width = 480;
  const frame = { data: Uint8Array.from({ length: height * width * 3 }, (_, i) => (i * 7919) % 251), shape: [height, width, 3], dtype: "uint8" as const };
  const { depth } = await runModelFile(output, frame);
  t.deepEqual(depth.dims, [height, width]);
  // 1 / (1/0.3 + (1/0.001 - 1/0.3) * disp) with disp a sigmoid lies in [0.001, 0.3] m.
  t.true((depth.data as Float32Array).every((d) => d >= 0.001 && d <= 0.3));
});
