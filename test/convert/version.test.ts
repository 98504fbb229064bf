import test from "ava";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONVERTER_FOLDERS, converterVersion, converterVersionOf } from "../../lib/convert/version.js";
import { repoRoot, temporaryDirectory } from "../support/fixtures.js";

/** A copy of the converter's sources, as a package installed elsewhere would have them. */
function copyOfConverter(t: { teardown: (f: () => void) => void }): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  for (const folder of CONVERTER_FOLDERS) cpSync(join(repoRoot, "lib", folder), join(dir.path, folder), { recursive: true });
  return dir.path;
}

test("the converter version is 16 hex digits and the same for the same sources wherever they lie", (t) => {
  t.regex(converterVersion(), /^[0-9a-f]{16}$/);
  t.is(converterVersionOf(copyOfConverter(t)), converterVersion());
});

test("a changed graph builder changes the converter version", (t) => {
  const root = copyOfConverter(t);
  const dpt = join(root, "models", "blocks", "dpt.ts");
  const source = readFileSync(dpt, "utf8");
  const relu = "return finalRelu ? g.relu(logits) : logits;";
  t.true(source.includes(relu), "the DPT head ends in an optional ReLU");
  writeFileSync(dpt, source.replace(relu, "return logits;"));
  t.not(converterVersionOf(root), converterVersion());
});

test("a new module in a converter folder changes the converter version; a declaration file does not", (t) => {
  const root = copyOfConverter(t);
  writeFileSync(join(root, "onnx", "notes.d.ts"), "export {};\n");
  t.is(converterVersionOf(root), converterVersion());
  writeFileSync(join(root, "onnx", "extra_pass.ts"), "export const pass = 1;\n");
  t.not(converterVersionOf(root), converterVersion());
});
