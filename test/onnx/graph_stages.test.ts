import test from "ava";
import { InputError } from "../../lib/errors.js";
import { MODEL_NAMES, modelSpec } from "../../lib/models/registry.js";
import { Weights } from "../../lib/models/weights.js";
import { Graph } from "../../lib/onnx/graph.js";
import { tinyStateDict } from "../models/helpers.js";

test("a marked stage is found by name, and every value by its name with its type", (t) => {
  const g = new Graph("stages");
  const x = g.input("x", "float32", [2]);
  const y = g.relu(x);
  g.markStage("raw", y);
  t.is(g.stage("raw"), y);
  t.is(g.stage("preprocessed"), undefined);
  t.deepEqual(g.valueNamed(y.name), { name: y.name, dtype: "float32", shape: [2] });
  t.is(g.valueNamed(g.constant([1, 2], "int64").name)?.dtype, "int64");
  t.is(g.valueNamed("nothing"), undefined);
});

test("marking a value of another graph is refused, naming the stage", (t) => {
  const other = new Graph("other");
  const foreign = other.relu(other.input("z", "float32", [1]));
  const g = new Graph("stages");
  const error = t.throws(() => g.markStage("raw", foreign), { instanceOf: InputError });
  t.is(error?.key, "raw");
  t.regex(error?.message ?? "", /The stage "raw" is not a value of the ONNX graph stages/);
});

for (const arch of MODEL_NAMES) {
  test(`${arch}: the builder marks the network input [1, 3, 420, 742] and its raw output`, async (t) => {
    const g = new Graph(arch);
    modelSpec(arch).build!(g, new Weights(await tinyStateDict(arch)), { channelOrder: "rgb" });
    t.deepEqual(g.stage("preprocessed")?.shape, [1, 3, 420, 742]);
    const raw = g.stage("raw");
    t.is(raw?.dtype, "float32");
    t.is(raw?.shape?.length, 4);
    t.is(raw?.shape?.[1], 1);
  });
}
