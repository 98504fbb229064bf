import test from "ava";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../lib/package_info.js";
// @ts-expect-error: a plain JavaScript script without declarations
import { prebuildProblem } from "../../scripts/check_prebuilds.js";
import { temporaryDirectory } from "../support/fixtures.js";

const committed = join(packageRoot, "native", "prebuilt", "linux-x64");

function checkPrebuilds(t: { teardown(fn: () => void): void }, populate: (platformFolder: string) => void): { status: number | null; stdout: string; stderr: string; folder: string } {
  const dir = temporaryDirectory("endosynth-prebuilt-");
  t.teardown(dir.cleanup);
  const folder = join(dir.path, "prebuilt");
  mkdirSync(join(folder, "linux-x64"), { recursive: true });
  populate(join(folder, "linux-x64"));
  const result = spawnSync(process.execPath, [join(packageRoot, "scripts", "check_prebuilds.js"), folder], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, folder };
}

test("the committed linux-x64 addon was built from these native sources, with CUDA and TensorRT headers", (t) => {
  const result = spawnSync(process.execPath, [join(packageRoot, "scripts", "check_prebuilds.js")], { encoding: "utf8" });
  t.is(result.status, 0, `${result.stderr} (after changing native/, run: npm run build:prebuilt -- --tensorrt <TensorRT include dir>)`);
  t.regex(result.stdout, /ok - .*native\/prebuilt\/linux-x64\/endosynth\.node/);
});

test("publishing with no prebuilt binary is refused", (t) => {
  const { status, stderr, folder } = checkPrebuilds(t, () => {});
  t.is(status, 1);
  t.true(stderr.includes(`no prebuilt binaries in ${folder}`), stderr);
});

test("publishing a prebuilt addon that does not load is refused, naming it", (t) => {
  const { status, stderr, folder } = checkPrebuilds(t, (dir) => writeFileSync(join(dir, "endosynth.node"), "not a shared object"));
  t.is(status, 1);
  t.true(stderr.includes(`${join(folder, "linux-x64", "endosynth.node")} does not load here`), stderr);
});

test("publishing a prebuilt addon built from other native sources is refused", (t) => {
  const { status, stderr } = checkPrebuilds(t, (dir) => {
    copyFileSync(join(committed, "endosynth.node"), join(dir, "endosynth.node"));
    writeFileSync(join(dir, "build.json"), JSON.stringify({ sourcesSha256: "0".repeat(64) }));
  });
  t.is(status, 1);
  t.regex(stderr, /was built from other native sources than these/);
});

test("an addon built without CUDA or without TensorRT headers is refused, saying how to rebuild", (t) => {
  const dir = temporaryDirectory("endosynth-prebuilt-");
  t.teardown(dir.cleanup);
  const stub = (name: string, build: object): string => {
    const path = join(dir.path, name);
    writeFileSync(path, `module.exports = { status: () => ({ build: ${JSON.stringify(build)} }) };`);
    return path;
  };
  t.regex(prebuildProblem(stub("no-cuda.cjs", { cuda: false, tensorrt: false }))!, /was built without CUDA \(rebuild with the CUDA toolkit present: npm run build:prebuilt -- --tensorrt/);
  t.regex(prebuildProblem(stub("no-trt.cjs", { cuda: true, tensorrt: false }))!, /was built without TensorRT headers, so it could never use TensorRT/);
});
