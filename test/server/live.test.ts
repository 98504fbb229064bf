import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { InputError } from "../../lib/errors.js";
import { readImage } from "../../lib/io/image.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import type { LiveFrame } from "../../lib/server/live_feed.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { Client, expectedDepth, socketUrl, StandInModel, startServer, testFrame } from "./helpers.js";

/** `count` frames, one every `intervalMs`, each with its timestamp. */
async function* camera(count: number, intervalMs: number, state = { closed: false }): AsyncGenerator<LiveFrame> {
  try {
    for (let index = 0; index < count; index++) {
      await sleep(intervalMs);
      yield { frame: testFrame(12, 16, index), timestamp: index / 25 };
    }
  } finally {
    state.closed = true;
  }
}

const isFrame = (message: { header: Record<string, any> }) => message.header.type === "frame";

test("live() sends every viewer the frame, its depth colour map and its point cloud", async (t) => {
  const server = await startServer(t, new StandInModel(5));
  const viewer = new Client(socketUrl(server, "v1/live"));
  await viewer.opened();
  // A camera slower than the model: each frame comes once the viewer has the one before.
  const summary = await server.live((async function* () {
    for (let index = 0; index < 3; index++) {
      if (index > 0) await viewer.waitFor(isFrame, index);
      yield { frame: testFrame(12, 16, index), timestamp: index / 25 };
    }
  })());
  t.deepEqual(summary, { frames: 3, inferred: 3, dropped: 0, failed: 0 });
  const frames = await viewer.waitFor(isFrame, 3);
  t.deepEqual(frames.map(({ header }) => [header.frame, header.timestamp]), [[0, 0], [1, 0.04], [2, 0.08]]);
  const { header, parts } = frames[2];
  t.like(header, { width: 16, height: 12, range: [0.02, 0.2], dropped: 0 });
  t.deepEqual(header.parts.map((part: { name: string; type: string }) => [part.name, part.type]), [
    ["image", "image/jpeg"],
    ["depth", "image/png"],
    ["points", "application/x-endosynth-points"],
  ]);
  t.deepEqual((await readImage(parts[0])).shape, [12, 16, 3]);
  const depth = expectedDepth(testFrame(12, 16, 2));
  t.deepEqual((await readImage(parts[1])).data, depth2rgb(depth, 0.02, 0.2).data);
  t.is(header.parts[2].count, 12 * 16);
  t.true(header.latencyMs >= header.inferMs && header.inferMs >= 4);
  await viewer.waitFor((message) => message.header.type === "ended");
  viewer.close();
});

test("a live source faster than the model: the newest frame wins, the others count as dropped", async (t) => {
  const model = new StandInModel();
  const server = await startServer(t, model);
  const viewer = new Client(socketUrl(server, "v1/live"));
  await viewer.opened();
  const release = model.hold();
  let delivered = 0;
  // Frame 0 is being inferred (held) while 1 to 19 arrive: each replaces the one before it.
  const playing = server.live((async function* () {
    for (let index = 0; index < 20; index++, delivered++) yield { frame: testFrame(12, 16, index) };
  })());
  while (delivered < 20) await sleep(10);
  release();
  const summary = await playing;
  t.deepEqual(summary, { frames: 20, inferred: 2, dropped: 18, failed: 0 });
  t.is(model.calls, 2);
  const frames = await viewer.waitFor(isFrame, 2);
  t.deepEqual(frames.map(({ header }) => header.frame), [0, 19]);
  t.deepEqual(frames.map(({ header }) => header.dropped), [18, 18]);
  viewer.close();
});

test("a viewer's configure sets its own colour range", async (t) => {
  const server = await startServer(t, new StandInModel());
  const narrow = new Client(socketUrl(server, "v1/live"));
  const usual = new Client(socketUrl(server, "v1/live"));
  await Promise.all([narrow.opened(), usual.opened()]);
  narrow.ws.send(JSON.stringify({ type: "configure", range: [0.1, 0.15] }));
  await narrow.waitFor((message) => message.header.type === "configured");
  await server.live(camera(1, 0));
  const [narrowFrame] = await narrow.waitFor(isFrame);
  const [usualFrame] = await usual.waitFor(isFrame);
  const depth = expectedDepth(testFrame(12, 16, 0));
  t.deepEqual(narrowFrame.header.range, [0.1, 0.15]);
  t.deepEqual((await readImage(narrowFrame.parts[1])).data, depth2rgb(depth, 0.1, 0.15).data);
  t.deepEqual((await readImage(usualFrame.parts[1])).data, depth2rgb(depth, 0.02, 0.2).data);
  narrow.ws.send(new Uint8Array(4));
  t.regex((await narrow.waitFor((message) => message.header.type === "error"))[0].header.error.message, /takes no frames: send them to \/v1\/stream/);
  narrow.close();
  usual.close();
});

test("aborting live() stops it and closes its source; one source plays at a time", async (t) => {
  const server = await startServer(t, new StandInModel());
  const state = { closed: false };
  const controller = new AbortController();
  const playing = server.live(camera(1000, 5, state), { signal: controller.signal });
  await t.throwsAsync(server.live(camera(1, 0)), { instanceOf: InputError, message: "A live source is already playing on this server" });
  await sleep(100);
  t.like(await (await fetch(`${server.url}health`)).json(), { live: { running: true } });
  controller.abort();
  const summary = await playing;
  t.true(summary.frames > 0 && summary.frames < 1000);
  await sleep(20);
  t.true(state.closed);
  t.like(await (await fetch(`${server.url}health`)).json(), { live: { running: false, frames: summary.frames } });
});

test("a frame the model fails on is reported to viewers and the feed goes on", async (t) => {
  const server = await startServer(t, new StandInModel());
  const viewer = new Client(socketUrl(server, "v1/live"));
  await viewer.opened();
  const failing: NdArray<"uint8"> = testFrame(2, 2);
  failing.data[0] = 255;
  const summary = await server.live((async function* () {
    yield failing;
    await sleep(20);
    yield testFrame(2, 2, 1);
  })());
  t.deepEqual(summary, { frames: 2, inferred: 1, dropped: 0, failed: 1 });
  const [error] = await viewer.waitFor((message) => message.header.type === "error");
  t.like(error.header, { frame: 0, error: { status: 500, message: "the stand-in fails on frames starting with 255" } });
  await viewer.waitFor(isFrame);
  viewer.close();
});
