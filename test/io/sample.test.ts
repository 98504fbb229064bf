import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { readNpz, writeNpz } from "../../lib/io/npz.js";
import { type EndoSynthSample, firstOutOfRangeClass, readSample, SEG_CLASSES, validateSample, writeSample } from "../../lib/io/sample.js";
import { openZip } from "../../lib/io/zip_reader.js";
import { type NdArray, ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function tinySample(): EndoSynthSample {
  return {
    rgb: ndarray(Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i * 10), [2, 3, 3]),
    depth: ndarray(new Float32Array([0.0200042724609375, 0.04998779296875, 0.0999755859375, 0.125, 0.25, 0.5]), [2, 3], "float16"),
    seg: ndarray(Uint8Array.of(0, 1, 2, 3, 4, 6), [2, 3]),
  };
}

/** Writes the fixture sample with one array replaced (or removed), to make a broken file. */
function brokenSample(dir: string, change: Record<string, NdArray | undefined>): string {
  const arrays: Record<string, NdArray> = { ...readNpz(fixture("utils", "sample_a.npz"), { halfPrecision: "raw" }) };
  for (const [key, array] of Object.entries(change)) {
    if (array === undefined) delete arrays[key];
    else arrays[key] = array;
  }
  const path = join(dir, "broken.npz");
  writeNpz(path, arrays);
  return path;
}

test("SEG_CLASSES names the seven EndoSynth classes in index order", (t) => {
  t.is(SEG_CLASSES.length, 7);
  t.is(SEG_CLASSES[0], "background");
  t.is(SEG_CLASSES[4], "needle driver");
  t.is(SEG_CLASSES[6], "maryland bipolar grasper");
});

for (const name of ["sample_a", "sample_b"]) {
  test(`reads the ${name} fixture with the schema's dtypes and shapes`, (t) => {
    const { rgb, depth, seg } = readSample(fixture("utils", `${name}.npz`));
    t.deepEqual([rgb.dtype, rgb.shape], ["uint8", [1080, 1920, 3]]);
    t.deepEqual([depth.dtype, depth.shape], ["float16", [1080, 1920]]);
    t.deepEqual([seg.dtype, seg.shape], ["uint8", [1080, 1920]]);
    t.true(depth.data instanceof Float32Array);
  });
}

test("reads from bytes, and raw float16 on request", (t) => {
  const sample = readSample(readFileSync(fixture("utils", "sample_a.npz")), { halfPrecision: "raw" });
  t.true(sample.depth.data instanceof Uint16Array);
});

test("round-trips stored and compressed samples, stored ones as aligned views of the file", (t) => {
  const dir = tempDir(t);
  for (const compress of [false, true]) {
    const path = join(dir, `s${compress}.npz`);
    writeSample(path, tinySample(), { compress });
    const bytes = readFileSync(path);
    t.is([...openZip(bytes).entries.values()][0].method, compress ? 8 : 0);
    const back = readSample(bytes);
    if (!compress) t.is(back.seg.data.buffer, bytes.buffer);
    for (const key of ["rgb", "depth", "seg"] as const) {
      t.deepEqual(back[key].shape, tinySample()[key].shape);
      t.deepEqual([...back[key].data], [...tinySample()[key].data], key);
    }
  }
});

test("a missing key: FileFormatError naming file, key and what was found", (t) => {
  const path = brokenSample(tempDir(t), { seg: undefined });
  const error = t.throws(() => readSample(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.is(error.key, "seg");
  t.is(error.message, `${path}: missing key "seg": an EndoSynth sample holds rgb, depth and seg (found: rgb, depth)`);
});

test("a missing sample file: FileFormatError naming the file, as for a broken one", (t) => {
  const path = join(tempDir(t), "000000.npz");
  const error = t.throws(() => readSample(path), { instanceOf: FileFormatError });
  t.is(error.file, path);
  t.is(error.message, `${path}: cannot read the file: no such file`);
});

test("a wrong dtype: FileFormatError naming file, key, expected and actual", (t) => {
  const path = brokenSample(tempDir(t), { depth: ndarray(new Float32Array(1080 * 1920), [1080, 1920]) });
  const error = t.throws(() => readSample(path), { instanceOf: FileFormatError });
  t.is(error.key, "depth");
  t.is(error.message, `${path}: depth must be float16 but is float32`);
});

test("a wrong shape: FileFormatError with expected and actual shapes", (t) => {
  const dir = tempDir(t);
  const grey = brokenSample(dir, { rgb: ndarray(new Uint8Array(1080 * 1920), [1080, 1920, 1]) });
  t.throws(() => readSample(grey), { instanceOf: FileFormatError, message: /rgb must have shape \(H, W, 3\) but has shape \(1080, 1920, 1\)/ });
  const small = brokenSample(dir, { seg: ndarray(new Uint8Array(1080 * 960), [1080, 960]) });
  const error = t.throws(() => readSample(small), { instanceOf: FileFormatError });
  t.is(error.key, "seg");
  t.regex(error.message, /seg has shape \(1080, 960\) but rgb is 1080x1920: expected \(1080, 1920\)/);
});

test("a seg value out of range: FileFormatError naming the value and position", (t) => {
  const seg = new Uint8Array(1080 * 1920);
  seg[5 * 1920 + 7] = 7;
  const path = brokenSample(tempDir(t), { seg: ndarray(seg, [1080, 1920]) });
  const error = t.throws(() => readSample(path), { instanceOf: FileFormatError });
  t.is(error.key, "seg");
  t.is(error.message, `${path}: seg holds class 7 at [5, 7], expected class indices 0..6`);
});

test("writeSample refuses a sample that breaks the schema with InputError, and writes nothing", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "x.npz");
  const wrong = { ...tinySample(), depth: ndarray(new Float64Array(6), [2, 3]) } as unknown as EndoSynthSample;
  const error = t.throws(() => writeSample(path, wrong), { instanceOf: InputError });
  t.is(error.message, "Invalid sample: depth must be float16 but is float64");
  t.throws(() => validateSample({ rgb: tinySample().rgb }), { instanceOf: InputError, message: /missing key "depth"/ });
  t.throws(() => validateSample(null), { instanceOf: InputError, message: /Expected an object \{ rgb, depth, seg \} for sample but received null/ });
  t.deepEqual(readdirSync(dir), []);
});

test("finds an out-of-range class at any offset and alignment, and every value from 7 to 255", (t) => {
  const buffer = new Uint8Array(64 + 3);
  for (const start of [0, 1, 2, 3]) {
    const seg = buffer.subarray(start, start + 61);
    for (let position = 0; position < seg.length; position += 5) {
      for (const value of [7, 8, 15, 128, 255]) {
        seg.fill(6);
        seg[position] = value;
        t.is(firstOutOfRangeClass(seg), position, `start ${start}, position ${position}, value ${value}`);
      }
    }
    seg.fill(6);
    t.is(firstOutOfRangeClass(seg), -1);
  }
  let missed = 0;
  for (let value = 0; value < 256; value++) if ((firstOutOfRangeClass(Uint8Array.of(0, 0, 0, value)) >= 0) !== value > 6) missed++;
  t.is(missed, 0);
});
