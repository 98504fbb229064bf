/**
 * The live viewer in a real headless browser: Debian's Chromium driven by playwright-core (its own
 * browser downloads need the internet). Skipped, saying so, where /usr/bin/chromium is absent.
 */
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import sharp from "sharp";
import { readNpy } from "../../lib/io/npy.js";
import { load, type Model } from "../../lib/model.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { startServeProcess, testPatternVideo } from "../cli/serve_process.js";
import { startServer } from "./helpers.js";

/** The page's document, in functions that run in the browser (the project compiles without the DOM library). */
declare const document: { getElementById(id: string): any };

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

/** A page of a fresh browser profile; every URL it requests is recorded. */
async function openBrowser(t: ExecutionContext): Promise<{ context: BrowserContext; page: Page; requested: string[]; problems: string[] }> {
  const profile = mkdtempSync(join(tmpdir(), "endosynth-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const requested: string[] = [];
  const problems: string[] = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
  page.on("pageerror", (error) => problems.push(error.message));
  return { context, page, requested, problems };
}

/** A hash of a canvas's pixels, to see whether it changed. */
function canvasDigest(page: Page, id: string): Promise<string> {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId);
    const pixels: Uint8ClampedArray = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    let lit = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      hash = (Math.imul(hash, 31) + pixels[i] + 7 * pixels[i + 1] + 13 * pixels[i + 2]) | 0;
      if (pixels[i] + pixels[i + 1] + pixels[i + 2] > 0) lit++;
    }
    return `${canvas.width}x${canvas.height} ${lit} lit #${hash}`;
  }, id);
}

async function counter(page: Page, id: string): Promise<string> {
  return (await page.textContent(`#${id}`)) ?? "";
}

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) test.skip(`viewer tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`, () => undefined);
const browserTest = hasChromium ? test.serial : test.skip;

browserTest("endosynth live: the viewer shows frames as they arrive, the depth canvas changes, counters and range slider work", async (t) => {
  const work = temporaryDirectory();
  t.teardown(work.cleanup);
  const video = join(work.path, "pattern.mkv");
  testPatternVideo(video, { width: 160, height: 120, fps: 5, frames: 20 });
  const server = await startServeProcess(t, ["live", "endodac", "-c", fixture("endodac", "tiny.pth"), video, "--loop", "--fx", "150"], { ENDOSYNTH_CACHE: join(work.path, "cache") });
  const { page, requested, problems } = await openBrowser(t);
  await page.goto(server.facts.url);
  await page.waitForFunction(() => Number(document.getElementById("frames").textContent) >= 2, undefined, { timeout: 60_000 });
  t.regex(await counter(page, "model"), /^endodac · onnxruntime · fp32 · endosynth \d+\.\d+\.\d+/);
  const first = await canvasDigest(page, "depth");
  const framesBefore = Number(await counter(page, "frames"));
  await page.waitForFunction((before) => Number(document.getElementById("frames").textContent) >= before + 2, framesBefore, { timeout: 60_000 });
  const second = await canvasDigest(page, "depth");
  t.regex(first, /^160x120 19200 lit/);
  t.not(second, first, "the depth canvas changed with the frames");
  t.regex(await canvasDigest(page, "input"), /^160x120 /);
  t.notRegex(await canvasDigest(page, "cloud"), /^640x360 0 lit/);
  t.regex(await counter(page, "fps"), /^\d+\.\d$/);
  t.regex(await counter(page, "latency"), /^\d+$/);
  t.regex(await counter(page, "dropped"), /^\d+$/);
  t.is(await counter(page, "status"), "live");

  await page.fill("#range-min", "0.1");
  await page.dispatchEvent("#range-min", "change");
  await page.waitForFunction(() => document.getElementById("legend").textContent.startsWith("0.1–0.2 m"), undefined, { timeout: 30_000 });
  t.is(await counter(page, "range-min-value"), "0.100");

  const origin = new URL(server.facts.url).origin;
  t.deepEqual(requested.filter((url) => !url.startsWith(origin) && !url.startsWith(origin.replace("http", "ws"))), [], "nothing loads from elsewhere");
  t.deepEqual(problems, []);
  t.is(await server.stop("SIGINT"), 0);
});

browserTest("endosynth serve: an image chosen in the viewer is sent over /v1/stream and its depth and point cloud shown", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const model: Model = await load("endodac", { checkpoint: fixture("endodac", "tiny.pth"), cacheDir: cache.path });
  t.teardown(() => model.dispose());
  const server = await startServer(t, model);
  const input = readNpy(fixture("endodac", "input.npy"));
  const image = join(cache.path, "frame.png");
  writeFileSync(image, await sharp(input.data as Uint8Array, { raw: { width: 480, height: 360, channels: 3 } }).png().toBuffer());
  const { page, problems } = await openBrowser(t);
  await page.goto(server.url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("no live source"));
  await page.setInputFiles("#file", image);
  await page.waitForFunction(() => document.getElementById("frames").textContent === "1", undefined, { timeout: 60_000 });
  t.is(await counter(page, "status"), "depth of your image");
  t.regex(await canvasDigest(page, "depth"), /^480x360 172800 lit/);
  t.regex(await canvasDigest(page, "input"), /^480x360 /);
  t.notRegex(await canvasDigest(page, "cloud"), /^640x360 0 lit/);
  t.deepEqual(problems, []);
});
