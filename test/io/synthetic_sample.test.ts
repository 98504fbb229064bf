import test from "ava";
import { InputError } from "../../lib/errors.js";
import { validateSample } from "../../lib/io/sample.js";
import { syntheticSample } from "../../lib/io/synthetic_sample.js";
import { roundFloat16 } from "../../lib/ndarray/float16.js";

test("draws a valid 1080x1920 EndoSynth sample by default, with depth in the dataset's range", (t) => {
  const sample = validateSample(syntheticSample());
  t.deepEqual(sample.rgb.shape, [1080, 1920, 3]);
  const depth = sample.depth.data as Float32Array;
  t.true(depth.every((v) => v >= 0.02 && v <= 0.26 && roundFloat16(v) === v));
  t.deepEqual([...new Set(sample.seg.data)].sort(), [0, 1, 4]);
});

test("the same options give the same bytes", (t) => {
  const a = syntheticSample({ height: 40, width: 64 });
  const b = syntheticSample({ height: 40, width: 64 });
  for (const key of ["rgb", "depth", "seg"] as const) t.deepEqual(a[key].data, b[key].data, key);
  t.deepEqual(a.depth.shape, [40, 64]);
});

test("a size out of range: InputError", (t) => {
  t.throws(() => syntheticSample({ height: 4 }), { instanceOf: InputError, message: "Expected an integer from 8 to 8192 for options.height but received 4" });
  t.throws(() => syntheticSample({ width: 10.5 }), { instanceOf: InputError, message: /options\.width but received 10\.5/ });
});
