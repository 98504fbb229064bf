import test from "ava";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { locateOnnxRuntime } from "../../../lib/backends/onnxruntime/runtime.js";
import { BackendUnavailableError } from "../../../lib/errors.js";
import type { PlatformPackageState } from "../../../lib/platform/package.js";
import { temporaryDirectory } from "../../support/fixtures.js";

const require = createRequire(import.meta.url);
const onnxruntimeNode = dirname(require.resolve("onnxruntime-node/package.json"));
const missing: PlatformPackageState = { found: false, name: "@endosynth/linux-x64", reason: "@endosynth/linux-x64 is not installed" };

test("ONNX Runtime is loaded from the platform package when it has one", (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  // The platform package's layout: ONNX Runtime's own dist/ and bin/ under onnxruntime/, with
  // onnxruntime-common resolvable beside it.
  const ort = join(dir.path, "node_modules", "@endosynth", "linux-x64", "onnxruntime");
  mkdirSync(ort, { recursive: true });
  symlinkSync(join(onnxruntimeNode, "dist"), join(ort, "dist"));
  symlinkSync(join(onnxruntimeNode, "bin"), join(ort, "bin"));
  symlinkSync(join(onnxruntimeNode, "..", "onnxruntime-common"), join(dir.path, "node_modules", "onnxruntime-common"));
  writeFileSync(join(ort, "package.json"), JSON.stringify({ name: "onnxruntime-node", version: "1.30.0", main: "dist/index.js" }));
  const entry = join(ort, "dist", "index.js");
  const state: PlatformPackageState = { found: true, package: { name: "@endosynth/linux-x64", dir: dirname(ort), version: "0.1.0", onnxruntime: entry } };
  const located = locateOnnxRuntime(state, join(dir.path, "index.js"));
  t.is(located.source.module, entry);
  t.deepEqual(located.source.skipped, []);
  t.is(typeof located.runtime.InferenceSession.create, "function");
});

test("without a platform package, an onnxruntime-node installed beside endosynth is used, and why is recorded", (t) => {
  const located = locateOnnxRuntime(missing);
  t.is(located.source.module, "onnxruntime-node");
  t.regex(located.source.version, /^\d+\.\d+\.\d+$/);
  t.deepEqual(located.source.skipped, ["@endosynth/linux-x64 is not installed"]);
});

test("with neither, BackendUnavailableError names the platform, what was looked for and both ways out", (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const error = t.throws(() => locateOnnxRuntime(missing, join(dir.path, "index.js")), { instanceOf: BackendUnavailableError });
  t.regex(error!.message, new RegExp(`^ONNX Runtime is not available for ${process.platform}-${process.arch} \\(@endosynth/linux-x64 is not installed; onnxruntime-node: not installed\\): install endosynth on a platform with prebuilt binaries .* or build from source`));
});
