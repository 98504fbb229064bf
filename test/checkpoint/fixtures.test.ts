import test from "ava";
import { readFileSync } from "node:fs";
import { readStateDict } from "../../lib/checkpoint/state_dict.js";
import type { KeysJson } from "../support/random_state_dict.js";
import { size } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";

const ARCHS = ["dav1", "dav2", "endodac", "midas"] as const;

interface FixtureConfig {
  tiny: { embed_dim: number; num_heads: number; mlp_hidden: number; depth: number; patch_size: number; pos_embed_grid?: number[]; rel_pos_table_rows?: number };
  checks: { calibration: { layer: string; bias: number; weight_abs_max: number } };
}

function readJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixture(...parts), "utf8")) as T;
}

/** The encoder's key prefix in each architecture's state dict. */
const ENCODER: Record<(typeof ARCHS)[number], string> = {
  dav1: "pretrained.",
  dav2: "pretrained.",
  endodac: "encoder.",
  midas: "pretrained.model.",
};

for (const arch of ARCHS) {
  test(`${arch}/tiny.pth: every key of the real checkpoint, in order, with its rank and dtype`, async (t) => {
    const { stateDict, info } = await readStateDict(fixture(arch, "tiny.pth"));
    const full = readJson<KeysJson>(arch, "keys_full.json");
    t.deepEqual([...stateDict.keys()], full.keys.map((spec) => spec.key));
    for (const spec of full.keys) {
      const array = stateDict.get(spec.key)!;
      t.is(array.shape.length, spec.shape.length, spec.key);
      t.is(array.dtype, spec.dtype, spec.key);
      t.is(array.data.length, size(array.shape), spec.key);
    }
    t.like(info, { format: "pytorch", byteOrder: "little", tensors: full.keys.length, dtypes: ["float32"], copiedTensors: 0 });
    t.is(info.wrapper, undefined);
    t.is(info.strippedPrefix, undefined);
  });

  test(`${arch}/tiny.pth: shapes follow the tiny config`, async (t) => {
    const { stateDict } = await readStateDict(fixture(arch, "tiny.pth"));
    const { tiny } = readJson<FixtureConfig>(arch, "config.json");
    const encoder = ENCODER[arch];
    const shape = (key: string) => stateDict.get(`${encoder}${key}`)?.shape;
    const e = tiny.embed_dim;
    t.deepEqual(shape("cls_token"), [1, 1, e]);
    t.deepEqual(shape("patch_embed.proj.weight"), [e, 3, tiny.patch_size, tiny.patch_size]);
    t.deepEqual(shape("blocks.0.attn.qkv.weight"), [3 * e, e]);
    t.deepEqual(shape("blocks.0.mlp.fc1.weight"), [tiny.mlp_hidden, e]);
    t.truthy(shape(`blocks.${tiny.depth - 1}.norm1.weight`));
    t.falsy(shape(`blocks.${tiny.depth}.norm1.weight`));
    if (tiny.pos_embed_grid) {
      const [gh, gw] = tiny.pos_embed_grid;
      t.deepEqual(shape("pos_embed"), [1, gh * gw + 1, e]);
    } else {
      t.deepEqual(shape("blocks.0.attn.relative_position_bias_table"), [tiny.rel_pos_table_rows, tiny.num_heads]);
    }
  });

  test(`${arch}/tiny.pth: LayerScale gammas lie in [0.25, 0.75] and the calibrated layer matches config.json`, async (t) => {
    const { stateDict } = await readStateDict(fixture(arch, "tiny.pth"));
    const gammas = [...stateDict].filter(([key]) => /\.(ls[12]\.gamma|gamma_[12])$/.test(key));
    t.true(gammas.length > 0);
    for (const [key, gamma] of gammas) {
      const values = Array.from(gamma.data as Float32Array);
      t.true(values.every((v) => v >= 0.25 && v <= 0.75), key);
      t.true(new Set(values).size > values.length / 2, `${key} is not constant`);
    }
    const { calibration } = readJson<FixtureConfig>(arch, "config.json").checks;
    const weight = stateDict.get(`${calibration.layer}.weight`)!.data as Float32Array;
    const bias = stateDict.get(`${calibration.layer}.bias`)!.data as Float32Array;
    const absMax = weight.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
    t.true(Math.abs(absMax - calibration.weight_abs_max) <= 1e-6 * calibration.weight_abs_max, `${absMax} vs ${calibration.weight_abs_max}`);
    t.deepEqual(Array.from(bias), [Math.fround(calibration.bias)]);
  });
}

/** Values printed by torch 1.13 (`torch.load(...)[key]`: its last three elements and its float64 sum). */
const TORCH_VALUES = [
  { arch: "dav1", key: "pretrained.blocks.11.attn.qkv.weight", shape: [384, 128], last: [-0.03234932944178581, 0.03977420926094055, 0.1787002831697464], sum: 3.8684701802097834 },
  { arch: "dav2", key: "depth_head.scratch.refinenet1.out_conv.bias", shape: [40], last: [0.13534624874591827, -0.07172457873821259, 0.06191457808017731], sum: -0.3326532458886504 },
  { arch: "endodac", key: "encoder.blocks.3.mlp.fc2.lora_B", shape: [128, 4], last: [0.5953384637832642, 0.3972991406917572, -0.028637098148465157], sum: -2.687675757924808 },
  { arch: "midas", key: "pretrained.model.blocks.23.attn.relative_position_bias_table", shape: [3972, 2], last: [0.06620008498430252, 0.23322346806526184, 0.1779778003692627], sum: -87.64384016535769 },
];

for (const expected of TORCH_VALUES) {
  test(`${expected.arch}/tiny.pth: ${expected.key} holds the values torch reads`, async (t) => {
    const { stateDict } = await readStateDict(fixture(expected.arch, "tiny.pth"));
    const array = stateDict.get(expected.key)!;
    t.deepEqual(array.shape, expected.shape);
    const data = array.data as Float32Array;
    t.deepEqual(Array.from(data.subarray(data.length - 3)), expected.last);
    const sum = data.reduce((total, v) => total + v, 0);
    t.true(Math.abs(sum - expected.sum) < 1e-9, `${sum} vs ${expected.sum}`);
  });
}

test("parameter counts match torch's (numel summed over the state dict by torch 1.13)", async (t) => {
  const counts = { dav1: 1817685, dav2: 1817685, endodac: 1911444, midas: 3680385 };
  for (const arch of ARCHS) {
    const { info } = await readStateDict(fixture(arch, "tiny.pth"));
    t.is(info.parameters, counts[arch], arch);
  }
});

test("every tensor of a fixture is a view into one file buffer (zero copy)", async (t) => {
  const { stateDict, info } = await readStateDict(fixture("dav1", "tiny.pth"));
  const buffers = new Set([...stateDict.values()].map((array) => array.data.buffer));
  t.is(buffers.size, 1);
  t.is([...buffers][0].byteLength, info.bytes);
});
