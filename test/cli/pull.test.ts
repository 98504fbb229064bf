import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { MODEL_NAMES, modelSpec } from "../../lib/models/registry.js";
import { whileRunningUntil } from "../support/child_process.js";
import { cliEntry, endosynth, tsxLoader } from "../support/cli.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { TestServer } from "../pull/server.js";

const SIZE = 2 * 1024 * 1024 + 3;

interface Setup {
  server: TestServer;
  body: Buffer;
  checkpoints: string;
  config: string;
  mirror: string;
  env: NodeJS.ProcessEnv;
}

/** A loopback mirror holding every model's file (random bytes), and an environment pointing the CLI at fresh folders. */
async function setup(t: ExecutionContext): Promise<Setup> {
  const server = await TestServer.start();
  t.teardown(() => server.close());
  const temporary = temporaryDirectory();
  t.teardown(temporary.cleanup);
  const body = randomBytes(SIZE);
  for (const name of MODEL_NAMES) server.files.set(`/mirror/${modelSpec(name).checkpointFile}`, { body, etag: `"${name}"` });
  const checkpoints = join(temporary.path, "checkpoints");
  const config = join(temporary.path, "config");
  return { server, body, checkpoints, config, mirror: `${server.origin}/mirror`, env: { ENDOSYNTH_CHECKPOINTS: checkpoints, XDG_CONFIG_HOME: config } };
}

test("pull --accept-license shows the licence, downloads into $ENDOSYNTH_CHECKPOINTS with a final progress line, and remembers the acceptance", async (t) => {
  const s = await setup(t);
  const result = await endosynth(["pull", "dav1", "--mirror", s.mirror, "--accept-license"], { env: s.env });
  t.is(result.code, 0, result.stderr);
  const file = join(s.checkpoints, "dav1-f.pth");
  t.true(readFileSync(file).equals(s.body));
  const license = modelSpec("dav1").weightsLicense;
  t.true(result.stderr.includes(`${license.name}: ${license.summary}.\nFull text: ${license.url}`), result.stderr);
  t.true(result.stderr.includes(`remembered in ${join(s.config, "endosynth", "licenses.json")}`), result.stderr);
  t.regex(result.stderr, /^downloading .*dav1-f\.pth: done, 2\.1 MB in [\d.]+ s, [\d.]+ MB\/s$/m);
  const sha256 = createHash("sha256").update(s.body).digest("hex");
  t.regex(result.stdout, new RegExp(`^dav1: downloaded .*dav1-f\\.pth \\(2\\.1 MB in [\\d.]+ s, [\\d.]+ MB/s\\); SHA-256 ${sha256} recorded in .*dav1-f\\.pth\\.sha256$`, "m"));

  const again = await endosynth(["pull", "dav1", "--mirror", s.mirror, "--json"], { env: s.env });
  t.is(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout) as { checkpoints: { model: string; status: string; sha256: string; sha256Check: string; file: string }[]; licenses: { url: string }[] };
  t.like(report.checkpoints[0], { model: "dav1", status: "present", sha256, sha256Check: "matched", file });
  t.is(report.licenses[0]?.url, license.url);
  t.is(s.server.requests.length, 1);
});

test("pull without --accept-license is refused before any request, naming the licence and the flag", async (t) => {
  const s = await setup(t);
  const result = await endosynth(["pull", "dav1", "--mirror", s.mirror], { env: s.env });
  t.is(result.code, 1);
  t.regex(result.stderr, /^endosynth: The dav1 weights are published under the EndoSynth terms.*non-commercial research use only.*--accept-license.*Nothing was downloaded\.$/m);
  t.is(s.server.requests.length, 0);
  t.false(existsSync(s.checkpoints));
});

test("pull all -q --checkpoints fetches every model, printing only the results", async (t) => {
  const s = await setup(t);
  const folder = join(s.checkpoints, "elsewhere");
  const result = await endosynth(["pull", "all", "-q", "--accept-license", "--mirror", `${s.mirror}/`, "--checkpoints", folder], { env: s.env });
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, "");
  t.is(result.stdout.trim().split("\n").length, MODEL_NAMES.length);
  for (const name of MODEL_NAMES) t.is(statSync(join(folder, modelSpec(name).checkpointFile)).size, SIZE);
  t.deepEqual(s.server.requests.map((r) => r.path).sort(), MODEL_NAMES.map((name) => `/mirror/${name}-f.pth`).sort());
});

test("pull reports a missing file on the mirror and a stalled server as errors, exit code 1", async (t) => {
  const s = await setup(t);
  s.server.files.clear();
  const missing = await endosynth(["pull", "dav2", "--accept-license", "--mirror", s.mirror], { env: s.env });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^endosynth: http:\/\/127\.0\.0\.1:\d+\/mirror\/dav2-f\.pth answered HTTP 404 \(not found\)/m);

  const stalled = await setup(t);
  stalled.server.next.push({ stallAfter: 1000 });
  const result = await endosynth(["pull", "dav2", "--accept-license", "--mirror", stalled.mirror, "--timeout", "1", "--retries", "0"], { env: stalled.env });
  t.is(result.code, 1);
  t.regex(result.stderr, /^endosynth: 127\.0\.0\.1:\d+ sent nothing for 1 s/m);
  t.regex(result.stderr, /stopped at 0\.0 MB of 2\.1 MB/);
});

test("Ctrl-C during a download exits 130 and keeps the bytes; the same command resumes", async (t) => {
  const s = await setup(t);
  s.server.next.push({ stallAfter: 100_000 });
  const args = ["--import", tsxLoader, cliEntry, "pull", "dav1", "--accept-license", "--mirror", s.mirror];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...s.env } });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const partial = join(s.checkpoints, "dav1-f.pth.partial");
  await whileRunningUntil(child, () => existsSync(partial) && statSync(partial).size === 100_000, () => stderr);
  child.kill("SIGINT");
  t.is(await exited, 130);
  t.regex(stderr, /interrupted: stopping; the bytes received are kept and the same command resumes/);
  t.deepEqual(readdirSync(s.checkpoints).sort(), ["dav1-f.pth.partial", "dav1-f.pth.partial.json"]);

  const resumed = await endosynth(["pull", "dav1", "--mirror", s.mirror], { env: s.env });
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /resumed at 0\.1 MB/);
  t.is(s.server.requests.at(-1)?.headers.range, "bytes=100000-");
  t.true(readFileSync(join(s.checkpoints, "dav1-f.pth")).equals(s.body));
});
