import test from "ava";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { currentPlatform, findPlatformPackage, PREBUILT_PLATFORMS, platformPackageName, waysOut } from "../../lib/platform/package.js";
import { packageJson } from "../../lib/package_info.js";
import { readFileSync } from "node:fs";
import { repoRoot, temporaryDirectory } from "../support/fixtures.js";

/** An installation folder holding `node_modules/@endosynth/<platform>` with the given manifest and files. */
function installation(t: { teardown(fn: () => void): void }, platform: string, manifest: object, files: string[] = []): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const packageDir = join(dir.path, "node_modules", "@endosynth", platform);
  mkdirSync(packageDir, { recursive: true });
  writeFileSync(join(packageDir, "package.json"), JSON.stringify({ name: `@endosynth/${platform}`, ...manifest }));
  for (const file of files) {
    mkdirSync(join(packageDir, file, ".."), { recursive: true });
    writeFileSync(join(packageDir, file), "");
  }
  return join(dir.path, "index.js");
}

const version = packageJson().version;

test("the platform package is found with the addon and ONNX Runtime its manifest names", (t) => {
  const from = installation(t, "linux-x64", { version, endosynth: { addon: "endosynth.node", onnxruntime: "onnxruntime/dist/index.js" } }, ["endosynth.node", "onnxruntime/dist/index.js"]);
  const state = findPlatformPackage(from, "linux-x64");
  t.true(state.found);
  if (!state.found) return;
  t.is(state.package.name, "@endosynth/linux-x64");
  t.regex(state.package.addon!, /node_modules\/@endosynth\/linux-x64\/endosynth\.node$/);
  t.regex(state.package.onnxruntime!, /node_modules\/@endosynth\/linux-x64\/onnxruntime\/dist\/index\.js$/);
});

test("a platform package without an addon (macOS, Windows) is found with ONNX Runtime only", (t) => {
  const from = installation(t, "darwin-arm64", { version, endosynth: { onnxruntime: "onnxruntime/dist/index.js" } }, ["onnxruntime/dist/index.js"]);
  const state = findPlatformPackage(from, "darwin-arm64");
  t.true(state.found && state.package.addon === undefined && state.package.onnxruntime !== undefined);
});

test("a missing platform package is reported by name with the likely cause", (t) => {
  const state = findPlatformPackage(join(temporaryDirectory().path, "index.js"), "linux-x64");
  t.false(state.found);
  if (state.found) return;
  t.is(state.name, "@endosynth/linux-x64");
  t.regex(state.reason, /^@endosynth\/linux-x64 is not installed \(npm skips optional dependencies when installing with --omit=optional/);
});

test("a platform package of another version is refused: its binaries may not match this JavaScript", (t) => {
  const from = installation(t, "linux-x64", { version: "0.0.1", endosynth: {} });
  const state = findPlatformPackage(from, "linux-x64");
  t.false(state.found);
  if (!state.found) t.is(state.reason, `@endosynth/linux-x64 is version 0.0.1, but endosynth is ${version}: install the same version of both`);
});

test("a platform without binaries is named, with the platforms that have them and both ways out", (t) => {
  const state = findPlatformPackage(import.meta.url, "linux-riscv64");
  t.false(state.found);
  if (!state.found) t.is(state.reason, "endosynth publishes no binaries for linux-riscv64 (only linux-x64, linux-arm64, darwin-arm64, win32-x64)");
  t.regex(waysOut(), /npm install onnxruntime-node.*npm_config_build_from_source=true npm rebuild endosynth/);
});

test("the published manifest lists one optional platform package per platform, at this version", async (t) => {
  const repositoryManifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { optionalDependencies?: Record<string, string> };
  t.is(repositoryManifest.optionalDependencies, undefined, "the repository's lock file cannot hold unpublished packages");
  const packScript = pathToFileURL(join(repoRoot, "scripts", "pack.js")).href;
  const { publishedManifest } = (await import(packScript)) as { publishedManifest(manifest: object, platforms: string[]): { optionalDependencies: Record<string, string> } };
  const manifest = publishedManifest(repositoryManifest, [...PREBUILT_PLATFORMS]);
  t.deepEqual(manifest.optionalDependencies, Object.fromEntries(PREBUILT_PLATFORMS.map((platform) => [platformPackageName(platform), version])));
  t.is(platformPackageName(), `@endosynth/${currentPlatform()}`);
});
