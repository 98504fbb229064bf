import test, { type ExecutionContext } from "ava";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbortError, ChecksumError, DownloadError, DownloadTimeoutError, FileFormatError, InputError, LicenseNotAcceptedError } from "../../lib/errors.js";
import { modelSpec } from "../../lib/models/registry.js";
import { checkpointDownloadUrl, pull, type PullOptions, type PullProgress } from "../../lib/pull/pull.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { type ServedFile, TestServer } from "./server.js";

/** Large enough to arrive in many chunks, odd so no boundary is round. */
const SIZE = 3 * 1024 * 1024 + 7;
const MIRROR_PATH = "/intranet/endosynth";
const FILE_PATH = `${MIRROR_PATH}/dav1-f.pth`;

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Compares file contents with Buffer.equals (ava's deepEqual walks megabytes byte by byte). */
function assertBytes(t: ExecutionContext, file: string, expected: Buffer): void {
  const actual = readFileSync(file);
  t.is(actual.byteLength, expected.byteLength, file);
  t.true(actual.equals(expected), `${file} holds other bytes`);
}

interface Setup {
  server: TestServer;
  body: Buffer;
  folder: string;
  checkpoint: string;
  options: PullOptions & { checkpointsDir: string; configDir: string };
}

/** A loopback server holding a random dav1-f.pth, and pull options aimed at it, in a fresh folder. */
async function setup(t: ExecutionContext, file: Partial<ServedFile> = {}): Promise<Setup> {
  const server = await TestServer.start();
  t.teardown(() => server.close());
  const temporary = temporaryDirectory();
  t.teardown(temporary.cleanup);
  const body = randomBytes(SIZE);
  server.files.set(FILE_PATH, { body, etag: '"etag-1"', lastModified: "Tue, 01 Jul 2025 10:00:00 GMT", ...file });
  const checkpointsDir = join(temporary.path, "checkpoints");
  return {
    server,
    body,
    folder: checkpointsDir,
    checkpoint: join(checkpointsDir, "dav1-f.pth"),
    options: {
      mirror: `${server.origin}${MIRROR_PATH}`,
      checkpointsDir,
      configDir: join(temporary.path, "config"),
      acceptLicense: true,
      retries: 0,
      timeout: 10_000,
    },
  };
}

/** Leaves an interrupted download behind: the server cuts the connection half-way, no retry. */
async function interruptedDownload(t: ExecutionContext, s: Setup): Promise<number> {
  s.server.next.push({ cutAfter: Math.floor(SIZE / 2) });
  const error = await t.throwsAsync(pull("dav1", s.options), { instanceOf: DownloadError });
  t.is(error?.code, "ERR_ENDOSYNTH_DOWNLOAD");
  t.false(existsSync(s.checkpoint));
  const kept = statSync(`${s.checkpoint}.partial`).size;
  t.true(kept > 0 && kept <= SIZE / 2, `kept ${kept} bytes`);
  assertBytes(t, `${s.checkpoint}.partial`, s.body.subarray(0, kept));
  return kept;
}

test("a full download puts the file in place, records its SHA-256 beside it and leaves nothing else", async (t) => {
  const s = await setup(t);
  const events: PullProgress[] = [];
  const [result] = await pull("dav1", { ...s.options, onProgress: (p) => events.push(p) });
  assertBytes(t, s.checkpoint, s.body);
  t.is(readFileSync(`${s.checkpoint}.sha256`, "utf8"), `${sha256(s.body)}  dav1-f.pth\n`);
  t.deepEqual(readdirSync(s.folder).sort(), ["dav1-f.pth", "dav1-f.pth.sha256"]);
  t.like(result, { model: "dav1", file: s.checkpoint, status: "downloaded", sha256: sha256(s.body), sha256Check: "recorded", size: SIZE, downloadedBytes: SIZE, resumedFrom: 0 });
  t.is(result?.url, `${s.server.origin}${FILE_PATH}`);
  t.true(events.length > 1);
  t.true(events.every((e, i) => e.phase === "downloading" && e.totalBytes === SIZE && (i === 0 || e.bytes > events[i - 1]!.bytes)));
  t.is(events.at(-1)?.bytes, SIZE);
  t.is(events.at(-1)?.fraction, 1);
});

test("a checkpoint already present and matching its record is verified and nothing is downloaded", async (t) => {
  const s = await setup(t);
  await pull("dav1", s.options);
  const requests = s.server.requests.length;
  const events: PullProgress[] = [];
  const [result] = await pull("dav1", { ...s.options, acceptLicense: false, onProgress: (p) => events.push(p) });
  t.like(result, { status: "present", sha256: sha256(s.body), sha256Check: "matched", size: SIZE, downloadedBytes: 0 });
  t.is(s.server.requests.length, requests);
  t.is(events.at(-1)?.phase, "verifying");
  t.is(events.at(-1)?.bytes, SIZE);
});

test("a checkpoint put in place by hand gets its SHA-256 recorded, and the next pull compares with it", async (t) => {
  const s = await setup(t);
  mkdirSync(s.folder);
  writeFileSync(s.checkpoint, s.body);
  const [first] = await pull("dav1", { ...s.options, acceptLicense: false });
  t.like(first, { status: "present", sha256: sha256(s.body), sha256Check: "recorded", downloadedBytes: 0 });
  t.is(readFileSync(`${s.checkpoint}.sha256`, "utf8"), `${sha256(s.body)}  dav1-f.pth\n`);
  const [second] = await pull("dav1", { ...s.options, acceptLicense: false });
  t.is(second?.sha256Check, "matched");
  t.is(s.server.requests.length, 0);
});

test("an unreadable SHA-256 record is reported with its path", async (t) => {
  const s = await setup(t);
  mkdirSync(s.folder);
  writeFileSync(s.checkpoint, s.body);
  writeFileSync(`${s.checkpoint}.sha256`, "not a hash\n");
  const error = await t.throwsAsync(pull("dav1", s.options), { instanceOf: FileFormatError, message: /should start with the 64-hex-digit SHA-256 of dav1-f\.pth/ });
  t.is(error?.file, `${s.checkpoint}.sha256`);
});

test("a connection cut half-way leaves a partial file that the next pull resumes with Range and If-Range", async (t) => {
  const s = await setup(t);
  const kept = await interruptedDownload(t, s);
  const [result] = await pull("dav1", s.options);
  const resume = s.server.requests.at(-1)!;
  t.is(resume.headers.range, `bytes=${kept}-`);
  t.is(resume.headers["if-range"], '"etag-1"');
  t.like(result, { status: "downloaded", resumedFrom: kept, downloadedBytes: SIZE - kept, sha256: sha256(s.body) });
  assertBytes(t, s.checkpoint, s.body);
  t.deepEqual(readdirSync(s.folder).sort(), ["dav1-f.pth", "dav1-f.pth.sha256"]);
});

test("with retries, a cut connection is resumed within the same pull", async (t) => {
  const s = await setup(t);
  s.server.next.push({ cutAfter: 100_000 });
  const [result] = await pull("dav1", { ...s.options, retries: 2 });
  t.is(s.server.requests.length, 2);
  t.regex(s.server.requests[1]!.headers.range ?? "", /^bytes=\d+-$/);
  t.like(result, { status: "downloaded", sha256: sha256(s.body) });
  t.true(result!.downloadedBytes <= SIZE, "no byte fetched twice");
  assertBytes(t, s.checkpoint, s.body);
});

test("a server answering 503 is retried, a 404 is not", async (t) => {
  const s = await setup(t);
  s.server.next.push({ status: 503 });
  await pull("dav1", { ...s.options, retries: 1 });
  t.is(s.server.requests.length, 2);

  const missing = await setup(t);
  missing.server.files.clear();
  const error = await t.throwsAsync(pull("dav1", { ...missing.options, retries: 3 }), { instanceOf: DownloadError, message: /answered HTTP 404 \(not found\).*mirror/ });
  t.is(error?.status, 404);
  t.is(error?.url, `${missing.server.origin}${FILE_PATH}`);
  t.is(missing.server.requests.length, 1);
  t.deepEqual(readdirSync(missing.folder), []);
});

test("a server that ignores Range sends the whole file again, which replaces the partial bytes", async (t) => {
  const s = await setup(t);
  await interruptedDownload(t, s);
  s.server.files.get(FILE_PATH)!.ignoreRange = true;
  const [result] = await pull("dav1", s.options);
  t.truthy(s.server.requests.at(-1)!.headers.range, "the resume was asked for");
  t.like(result, { resumedFrom: 0, downloadedBytes: SIZE, sha256: sha256(s.body) });
  assertBytes(t, s.checkpoint, s.body);
});

test("a file changed on the server since the partial download (other ETag) is downloaded again from zero", async (t) => {
  const s = await setup(t);
  await interruptedDownload(t, s);
  const newer = randomBytes(SIZE + 1000);
  s.server.files.set(FILE_PATH, { body: newer, etag: '"etag-2"' });
  const [result] = await pull("dav1", s.options);
  t.is(s.server.requests.at(-1)!.headers["if-range"], '"etag-1"');
  t.like(result, { resumedFrom: 0, downloadedBytes: newer.byteLength, sha256: sha256(newer) });
  assertBytes(t, s.checkpoint, newer);
});

test("Last-Modified serves as the validator when the server sends no strong ETag", async (t) => {
  const s = await setup(t, { etag: 'W/"weak"' });
  const kept = await interruptedDownload(t, s);
  await pull("dav1", s.options);
  t.is(s.server.requests.at(-1)!.headers["if-range"], "Tue, 01 Jul 2025 10:00:00 GMT");
  t.is(s.server.requests.at(-1)!.headers.range, `bytes=${kept}-`);
  assertBytes(t, s.checkpoint, s.body);
});

test("partial bytes without any validator are not trusted: the next pull starts from zero", async (t) => {
  const s = await setup(t, { etag: undefined, lastModified: undefined });
  await interruptedDownload(t, s);
  const [result] = await pull("dav1", s.options);
  t.is(s.server.requests.at(-1)!.headers.range, undefined);
  t.like(result, { resumedFrom: 0, downloadedBytes: SIZE });
  assertBytes(t, s.checkpoint, s.body);
});

test("a download whose SHA-256 differs from the recorded one is deleted, not put in place", async (t) => {
  const s = await setup(t);
  await pull("dav1", s.options);
  const recorded = sha256(s.body);
  const tampered = Buffer.from(s.body);
  tampered[SIZE >> 1] ^= 0xff;
  s.server.files.set(FILE_PATH, { body: tampered, etag: '"etag-tampered"' });
  rmSync(s.checkpoint); // lost: the next pull downloads it again, and compares with the record that stayed
  const error = await t.throwsAsync(pull("dav1", s.options), { instanceOf: ChecksumError });
  t.is(error?.code, "ERR_ENDOSYNTH_CHECKSUM");
  t.is(error?.expected, recorded);
  t.is(error?.actual, sha256(tampered));
  t.is(error?.file, s.checkpoint);
  t.deepEqual(readdirSync(s.folder), ["dav1-f.pth.sha256"]);
});

test("a checkpoint in place that no longer matches its record is reported, not replaced", async (t) => {
  const s = await setup(t);
  await pull("dav1", s.options);
  const damaged = Buffer.from(s.body);
  damaged[7] ^= 1;
  writeFileSync(s.checkpoint, damaged);
  const requests = s.server.requests.length;
  const error = await t.throwsAsync(pull("dav1", s.options), { instanceOf: ChecksumError, message: /damaged or was replaced/ });
  t.is(error?.actual, sha256(damaged));
  t.is(s.server.requests.length, requests);
  assertBytes(t, s.checkpoint, damaged);
});

test("a server that stops sending mid-file fails with a timeout error, keeping the bytes received", async (t) => {
  const s = await setup(t);
  s.server.next.push({ stallAfter: 200_000 });
  const started = performance.now();
  const error = await t.throwsAsync(pull("dav1", { ...s.options, timeout: 1500 }), { instanceOf: DownloadTimeoutError, message: /sent nothing for 1\.5 s/ });
  t.is(error?.code, "ERR_ENDOSYNTH_DOWNLOAD_TIMEOUT");
  t.true(performance.now() - started < 15_000, "hang guard");
  t.true(statSync(`${s.checkpoint}.partial`).size > 0);
  t.false(existsSync(`${s.checkpoint}.partial.lock`));
});

test("a server that never answers fails with a timeout error", async (t) => {
  const s = await setup(t);
  s.server.next.push({ silent: true });
  await t.throwsAsync(pull("dav1", { ...s.options, timeout: 1000 }), { instanceOf: DownloadTimeoutError, message: /sent nothing for 1 s/ });
});

test("without accepting the licence nothing is requested; once accepted it is remembered", async (t) => {
  const s = await setup(t);
  const error = await t.throwsAsync(pull("dav1", { ...s.options, acceptLicense: undefined }), { instanceOf: LicenseNotAcceptedError });
  t.is(error?.code, "ERR_ENDOSYNTH_LICENSE_NOT_ACCEPTED");
  t.is(error?.licenseUrl, modelSpec("dav1").weightsLicense.url);
  t.regex(error?.message ?? "", /non-commercial research use only.*--accept-license.*licenses\.json.*Nothing was downloaded/);
  t.is(s.server.requests.length, 0);
  t.false(existsSync(s.folder));

  await pull("dav1", { ...s.options, acceptLicense: true });
  const remembered = JSON.parse(readFileSync(join(s.options.configDir, "licenses.json"), "utf8")) as Record<string, { url: string }>;
  t.is(remembered[modelSpec("dav1").weightsLicense.id]?.url, modelSpec("dav1").weightsLicense.url);
  rmSync(s.checkpoint);
  await t.notThrowsAsync(pull("dav1", { ...s.options, acceptLicense: undefined }));
});

test("the mirror's base URL gets the file name appended; without one the authors' link is used", async (t) => {
  const spec = modelSpec("midas");
  t.is(checkpointDownloadUrl(spec).href, spec.checkpointUrl);
  t.is(checkpointDownloadUrl(spec, "http://10.0.0.5/models").href, "http://10.0.0.5/models/midas-f.pth");
  t.is(checkpointDownloadUrl(spec, "https://intranet.example/models/").href, "https://intranet.example/models/midas-f.pth");
  const s = await setup(t);
  await pull("dav1", s.options);
  t.deepEqual(s.server.requests.map((r) => r.path), [FILE_PATH]);
});

test("redirects are followed; a redirect loop fails after a bounded number of hops", async (t) => {
  const s = await setup(t);
  s.server.next.push({ redirectTo: "/elsewhere" }, { redirectTo: FILE_PATH });
  await pull("dav1", s.options);
  t.deepEqual(s.server.requests.map((r) => r.path), [FILE_PATH, "/elsewhere", FILE_PATH]);

  const looping = await setup(t);
  looping.server.next.push(...Array.from({ length: 20 }, () => ({ redirectTo: FILE_PATH })));
  await t.throwsAsync(pull("dav1", looping.options), { instanceOf: DownloadError, message: /redirected more than 10 times/ });
  t.is(looping.server.requests.length, 11);
});

test("an abort stops the download, keeps the bytes, and the next pull resumes from them", async (t) => {
  const s = await setup(t);
  const controller = new AbortController();
  const onProgress = (p: PullProgress) => p.bytes > SIZE / 3 && controller.abort();
  await t.throwsAsync(pull("dav1", { ...s.options, signal: controller.signal, onProgress }), { instanceOf: AbortError });
  const kept = statSync(`${s.checkpoint}.partial`).size;
  t.true(kept > 0);
  const [result] = await pull("dav1", s.options);
  t.is(result?.resumedFrom, kept);
  assertBytes(t, s.checkpoint, s.body);
});

test("two pulls of the same checkpoint at once: the second is refused while the first downloads", async (t) => {
  const s = await setup(t);
  s.server.next.push({ stallAfter: 1000 });
  const first = pull("dav1", { ...s.options, timeout: 1000 });
  while (s.server.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  await t.throwsAsync(pull("dav1", s.options), { instanceOf: DownloadError, message: /is being downloaded by process \d+ \(this one\)/ });
  await t.throwsAsync(first, { instanceOf: DownloadTimeoutError });
});

test("bad arguments are refused synchronously with the argument named", (t) => {
  t.throws(() => pull("dav3" as never), { instanceOf: InputError, message: /Expected one of "dav1".* for models but received "dav3"/ });
  t.throws(() => pull(["dav1", "x" as never]), { instanceOf: InputError, message: /for models\[1\]/ });
  t.throws(() => pull([]), { instanceOf: InputError, message: /non-empty array/ });
  t.throws(() => pull("dav1", { mirror: "ftp://host/x" }), { instanceOf: InputError, message: /http or https base URL for options.mirror/ });
  t.throws(() => pull("dav1", { timeout: 0 }), { instanceOf: InputError, message: /options.timeout/ });
  t.throws(() => pull("dav1", { acceptLicence: true } as never), { instanceOf: InputError, message: /Unknown option "acceptLicence"/ });
});
