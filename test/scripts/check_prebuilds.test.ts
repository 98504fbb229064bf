import test from "ava";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadNativeAddon } from "../../lib/backends/tensorrt/addon.js";
import { packageRoot } from "../../lib/package_info.js";
import { temporaryDirectory } from "../helpers/fixtures.js";

function checkPrebuilds(t: { teardown(fn: () => void): void }, populate: (folder: string) => void): { status: number | null; stderr: string; folder: string } {
  const dir = temporaryDirectory("endosynth-prebuilds-");
  t.teardown(dir.cleanup);
  const folder = join(dir.path, "prebuilds");
  mkdirSync(join(folder, "linux-x64"), { recursive: true });
  populate(folder);
  const result = spawnSync(process.execPath, [join(packageRoot, "scripts", "check_prebuilds.js"), folder], { encoding: "utf8" });
  return { status: result.status, stderr: result.stderr, folder };
}

test("publishing with no prebuilt binary is refused", (t) => {
  const { status, stderr, folder } = checkPrebuilds(t, () => {});
  t.is(status, 1);
  t.true(stderr.includes(`no prebuilt binaries in ${folder}`), stderr);
});

test("publishing a prebuild that does not load is refused, naming it", (t) => {
  const { status, stderr, folder } = checkPrebuilds(t, (dir) => writeFileSync(join(dir, "linux-x64", "endosynth.glibc.node"), "not a shared object"));
  t.is(status, 1);
  t.true(stderr.includes(`${join(folder, "linux-x64", "endosynth.glibc.node")} does not load here`), stderr);
});

test("publishing a prebuild built without TensorRT headers is refused; one built with them passes", (t) => {
  const state = loadNativeAddon();
  if (!state.loaded) return t.fail("the addon this package uses does not load");
  const { tensorrt } = state.addon.status().build;
  const { status, stderr } = checkPrebuilds(t, (dir) => copyFileSync(state.path, join(dir, "linux-x64", "endosynth.glibc.node")));
  if (tensorrt) {
    t.is(status, 0, stderr);
  } else {
    t.is(status, 1);
    t.regex(stderr, /endosynth\.glibc\.node was built without TensorRT headers, so it could never use TensorRT/);
  }
});
