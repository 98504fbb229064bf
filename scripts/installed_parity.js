#!/usr/bin/env node
// `npm run test:installed`: installs the tarballs of `npm run pack:all` (./pack/) into an empty
// project, as a user would (default npm configuration), and checks that every model, run from
// that installation, matches the reference fixtures within 2e-4 relative: the platform package's
// ONNX Runtime computes what the development checkout's does. Needs ../shared/fixtures.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { packageRoot } from "./build_native.js";

const BOUND = 2e-4;
const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(packageRoot, "..", "shared", "fixtures"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

// Runs inside the installed project: prints one JSON line per model.
const CHECK = `
import { load, readNpy } from "endosynth";
const [fixtures, cache] = process.argv.slice(1);
for (const name of ["dav1", "dav2", "endodac", "midas"]) {
  const model = await load(name, { checkpoint: \`\${fixtures}/\${name}/tiny.pth\`, cacheDir: cache });
  const depth = await model.infer(readNpy(\`\${fixtures}/\${name}/input.npy\`));
  const expected = readNpy(\`\${fixtures}/\${name}/expected.npy\`).data;
  let maxRelative = 0;
  for (let i = 0; i < expected.length; i++) maxRelative = Math.max(maxRelative, Math.abs(depth.data[i] - expected[i]) / Math.abs(expected[i]));
  console.log(JSON.stringify({ name, backend: model.backend, maxRelative }));
  await model.dispose();
}`;

function main() {
  const tarballs = readdirSync(join(packageRoot, "pack")).filter((name) => name.endsWith(".tgz")).map((name) => join(packageRoot, "pack", name));
  if (tarballs.length === 0) throw new Error("no tarballs in pack/: run npm run pack:all first");
  const project = mkdtempSync(join(tmpdir(), "endosynth-installed-"));
  try {
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "installed-parity", version: "1.0.0", private: true, type: "module" }));
    execFileSync(npm, ["install", "--no-audit", "--no-fund", ...tarballs], { cwd: project, stdio: ["ignore", "ignore", "inherit"] });
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", CHECK, fixtures, join(project, "cache")], { cwd: project, encoding: "utf8" });
    const rows = output.trim().split("\n").map((line) => JSON.parse(line));
    let failed = false;
    for (const row of rows) {
      const ok = row.maxRelative <= BOUND;
      failed ||= !ok;
      console.log(`installed parity: ${row.name.padEnd(8)} ${row.backend}  max relative error ${row.maxRelative.toExponential(2)}  ${ok ? "ok" : `ABOVE ${BOUND}`}`);
    }
    if (failed || rows.length !== 4) process.exit(1);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}

main();
