/**
 * Generates lib/viz/colormaps.ts: the colour tables of matplotlib's "Spectral" and "Set2"
 * colormaps, computed here from matplotlib's published definitions exactly as matplotlib 3.6.3
 * builds them, so the package needs neither Python nor the fixtures at run time.
 *
 *   npm run generate:colormaps            # writes lib/viz/colormaps.ts
 *   npm run generate:colormaps -- --check # fails if the committed file differs from a fresh one
 *
 * When the reference fixtures are present (../shared/fixtures/utils/{spectral_lut,set2}.json, or
 * under ENDOSYNTH_FIXTURES), every table entry is compared with them bit for bit and any
 * difference fails the script.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomicSync } from "../lib/io/atomic.js";

type Rgb = readonly [number, number, number];

/** `_Spectral_data` of matplotlib/_cm.py: the 11 ColorBrewer "Spectral" colours. */
const SPECTRAL_DATA: readonly Rgb[] = [
  [0.61960784313725492, 0.003921568627450980, 0.25882352941176473],
  [0.83529411764705885, 0.24313725490196078, 0.30980392156862746],
  [0.95686274509803926, 0.42745098039215684, 0.2627450980392157],
  [0.99215686274509807, 0.68235294117647061, 0.38039215686274508],
  [0.99607843137254903, 0.8784313725490196, 0.54509803921568623],
  [1.0, 1.0, 0.74901960784313726],
  [0.90196078431372551, 0.96078431372549022, 0.59607843137254901],
  [0.6705882352941176, 0.8666666666666667, 0.64313725490196083],
  [0.4, 0.76078431372549016, 0.6470588235294118],
  [0.19607843137254902, 0.53333333333333333, 0.74117647058823533],
  [0.36862745098039218, 0.30980392156862746, 0.63529411764705879],
];

/** `_Set2_data` of matplotlib/_cm.py: the 8 ColorBrewer "Set2" colours, used as they are (a ListedColormap). */
const SET2_DATA: readonly Rgb[] = [
  [0.4, 0.76078431372549016, 0.6470588235294118],
  [0.9882352941176471, 0.55294117647058827, 0.3843137254901961],
  [0.55294117647058827, 0.62745098039215685, 0.79607843137254897],
  [0.90588235294117647, 0.54117647058823526, 0.76470588235294112],
  [0.65098039215686276, 0.84705882352941175, 0.32941176470588235],
  [1.0, 0.85098039215686272, 0.18431372549019609],
  [0.89803921568627454, 0.7686274509803922, 0.58039215686274515],
  [0.70196078431372544, 0.70196078431372544, 0.70196078431372544],
];

/** matplotlib's default lookup-table size (rcParams["image.lut"]). */
const LUT_SIZE = 256;

/** `numpy.linspace(0, 1, n)`: `i * (1 / (n - 1))`, the last element set to exactly 1. */
function linspace01(n: number): number[] {
  const step = 1 / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 : i * step));
}

/** `numpy.searchsorted(sorted, value)` (side "left"): the first index whose element is >= value. */
function searchSorted(sorted: readonly number[], value: number): number {
  let index = 0;
  while (index < sorted.length && sorted[index] < value) index++;
  return index;
}

/**
 * `matplotlib.colors._create_lookup_table(N, data, gamma=1)` for one channel of
 * `LinearSegmentedColormap.from_list`, whose segments are `(x_i, y_i, y_i)` with `x = linspace(0, 1, k)`.
 * Every operation is the float64 one numpy performs, in the same order.
 */
function lookupTable(n: number, values: readonly number[]): number[] {
  const x = linspace01(values.length).map((v) => v * (n - 1));
  const xind = linspace01(n).map((v) => (n - 1) * v); // `** gamma` with gamma = 1 is exact
  const lut = [values[0]];
  for (let i = 1; i < n - 1; i++) {
    const ind = searchSorted(x, xind[i]);
    const distance = (xind[i] - x[ind - 1]) / (x[ind] - x[ind - 1]);
    lut.push(distance * (values[ind] - values[ind - 1]) + values[ind - 1]);
  }
  lut.push(values[values.length - 1]);
  return lut.map((v) => Math.min(1, Math.max(0, v)));
}

function spectralTable(): Rgb[] {
  const channels = [0, 1, 2].map((c) => lookupTable(LUT_SIZE, SPECTRAL_DATA.map((rgb) => rgb[c])));
  return Array.from({ length: LUT_SIZE }, (_, i) => [channels[0][i], channels[1][i], channels[2][i]] as const);
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const fixturesRoot = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(repoRoot, "../shared/fixtures"));

/** Compares a table with a fixture's `rgba` rows (bit for bit, alpha 1); returns the differences found. */
function compareWithFixture(name: string, table: readonly Rgb[], fixtureFile: string): string[] {
  const path = join(fixturesRoot, "utils", fixtureFile);
  if (!existsSync(path)) {
    console.log(`${fixtureFile} not found under ${fixturesRoot}: ${name} not cross-checked`);
    return [];
  }
  const rows = (JSON.parse(readFileSync(path, "utf8")) as { rgba: number[][] }).rgba;
  const problems: string[] = [];
  if (rows.length !== table.length) problems.push(`${name}: ${fixtureFile} has ${rows.length} rows, we make ${table.length}`);
  table.forEach((rgb, i) => {
    const row = rows[i] ?? [];
    if (row[3] !== 1) problems.push(`${name}[${i}]: alpha ${row[3]} in ${fixtureFile}, expected 1`);
    rgb.forEach((value, c) => {
      if (!Object.is(value, row[c])) problems.push(`${name}[${i}][${c}]: we make ${value}, ${fixtureFile} has ${row[c]}`);
    });
  });
  if (problems.length === 0) console.log(`${name}: all ${table.length} colours equal ${fixtureFile} bit for bit`);
  return problems;
}

function formatTable(table: readonly Rgb[]): string {
  return table.map((rgb) => `  ${rgb.map((v) => String(v)).join(", ")},`).join("\n");
}

function render(spectral: readonly Rgb[], set2: readonly Rgb[]): string {
  return `/**
 * Colour tables of matplotlib's "Spectral" and "Set2" colormaps, as matplotlib 3.6.3 computes them
 * in float64 (RGB rows, values in [0, 1]; alpha is always 1 and omitted).
 *
 * GENERATED FILE, do not edit: \`npm run generate:colormaps\` (scripts/generate_colormaps.ts)
 * rebuilds it from matplotlib's colormap definitions and checks it against the reference fixtures.
 * @module
 */

/**
 * \`matplotlib.colormaps["Spectral"](np.arange(256))[:, :3]\`, row-major: entry \`i\` is
 * \`SPECTRAL_LUT[3 * i + c]\`. {@link depth2rgb} colours colormap index \`i\` with \`SPECTRAL_LUT[3 * i + c] * 255\`.
 */
export const SPECTRAL_LUT: Float64Array = new Float64Array([
${formatTable(spectral)}
]);

/**
 * \`matplotlib.colormaps["Set2"](k)[:3]\` for k = 0..7, row-major. {@link seg2rgb} colours class
 * \`c > 0\` with row \`c - 1\`.
 */
export const SET2_COLORS: Float64Array = new Float64Array([
${formatTable(set2)}
]);
`;
}

function main(): void {
  const spectral = spectralTable();
  const problems = [...compareWithFixture("Spectral", spectral, "spectral_lut.json"), ...compareWithFixture("Set2", SET2_DATA, "set2.json")];
  if (problems.length > 0) {
    console.error(problems.slice(0, 20).join("\n"));
    console.error(`${problems.length} difference(s) with the reference fixtures; lib/viz/colormaps.ts not written`);
    process.exit(1);
  }
  const target = join(repoRoot, "lib", "viz", "colormaps.ts");
  const source = render(spectral, SET2_DATA);
  if (process.argv.includes("--check")) {
    const current = existsSync(target) ? readFileSync(target, "utf8") : "";
    if (current !== source) {
      console.error(`${target} is out of date: run npm run generate:colormaps`);
      process.exit(1);
    }
    console.log(`${target} is up to date`);
    return;
  }
  writeFileAtomicSync(target, Buffer.from(source));
  console.log(`wrote ${target}`);
}

main();
