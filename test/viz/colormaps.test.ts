import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { SET2_COLORS, SPECTRAL_LUT } from "../../lib/viz/colormaps.js";
import { fixture, repoRoot } from "../support/fixtures.js";

function rgbRows(file: string): number[] {
  return (JSON.parse(readFileSync(fixture("utils", file), "utf8")) as { rgba: number[][] }).rgba.flatMap((rgba) => rgba.slice(0, 3));
}

test("the Spectral table equals matplotlib's, from spectral_lut.json, bit for bit", (t) => {
  t.deepEqual([...SPECTRAL_LUT], rgbRows("spectral_lut.json"));
});

test("the Set2 table equals matplotlib's, from set2.json, bit for bit", (t) => {
  t.deepEqual([...SET2_COLORS], rgbRows("set2.json"));
});

test("the committed colormaps.ts is what the generator makes", (t) => {
  const output = execFileSync(process.execPath, ["--import", "tsx", "scripts/generate_colormaps.ts", "--check"], { cwd: repoRoot, encoding: "utf8" });
  t.regex(output, /is up to date/);
});
