import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortError, InputError, RuntimeFailureError } from "../lib/errors.js";
import { ndarray, type NdArray } from "../lib/ndarray/ndarray.js";
import { type DepthModel, streamDepth } from "../lib/stream.js";

/** A 2x2 RGB frame whose every byte is `value`. */
function frame(value: number): NdArray<"uint8"> {
  return ndarray<"uint8">(new Uint8Array(12).fill(value), [2, 2, 3]);
}

/**
 * Stand-in model: depth = (first byte + 1) / 100 metres, after a latency chosen per frame. Tracks
 * how many calls run at once.
 */
class StandInModel implements DepthModel {
  readonly name = "stand-in";
  running = 0;
  maxRunning = 0;
  calls = 0;
  constructor(
    private readonly latency: (value: number) => number,
    private readonly failOn?: number,
  ) {}

  async infer(input: NdArray<"uint8">): Promise<NdArray<"float32">> {
    this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const value = input.data[0];
      await sleep(this.latency(value));
      if (value === this.failOn) throw new RuntimeFailureError(`frame ${value} failed`);
      return ndarray<"float32">(new Float32Array(4).fill((value + 1) / 100), [2, 2]);
    } finally {
      this.running--;
    }
  }
}

/** A source of `count` frames that records how many were pulled and whether it was closed. */
function countingSource(count: number) {
  const state = { pulled: 0, closed: false };
  function* frames() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++;
        yield frame(i);
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, frames: frames() };
}

test("results come in frame order although later frames finish first", async (t) => {
  // Frame i takes (5 - i % 5) * 4 ms: within each window the last frame is the fastest.
  const model = new StandInModel((value) => (5 - (value % 5)) * 4);
  const indices: number[] = [];
  for await (const { index, frame: input, depth } of streamDepth(model, countingSource(12).frames, { inflight: 4 })) {
    indices.push(index);
    t.is(input.data[0], index);
    t.deepEqual([...depth.data], new Array(4).fill(Math.fround((index + 1) / 100)));
  }
  t.deepEqual(indices, [...Array(12).keys()]);
  t.is(model.maxRunning, 4);
});

test("never pulls more than inflight frames beyond the result in hand, and keeps inflight inferences running", async (t) => {
  for (const inflight of [1, 2, 3]) {
    const model = new StandInModel(() => 3);
    const { state, frames } = countingSource(10);
    let maxAhead = 0;
    for await (const { index } of streamDepth(model, frames, { inflight })) {
      await sleep(10); // a slow consumer: the source must not run ahead meanwhile
      maxAhead = Math.max(maxAhead, state.pulled - (index + 1));
    }
    t.is(maxAhead, inflight, `inflight ${inflight}`);
    t.is(model.maxRunning, inflight, `inflight ${inflight}`);
    t.is(state.pulled, 10);
  }
});

test("breaking out of the loop waits for running inferences and closes the source", async (t) => {
  const model = new StandInModel(() => 5);
  const { state, frames } = countingSource(100);
  const seen: number[] = [];
  for await (const { index } of streamDepth(model, frames, { inflight: 3 })) {
    seen.push(index);
    if (index === 2) break;
  }
  t.deepEqual(seen, [0, 1, 2]);
  t.true(state.closed);
  t.is(model.running, 0);
  t.true(state.pulled <= 6, `pulled ${state.pulled}`);
});

test("a failing frame ends the stream with its error after the earlier results, and closes the source", async (t) => {
  const model = new StandInModel((value) => (value === 3 ? 1 : 8), 3);
  const { state, frames } = countingSource(50);
  const seen: number[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const { index } of streamDepth(model, frames, { inflight: 2 })) seen.push(index);
  }, { instanceOf: RuntimeFailureError });
  t.is(error.message, "frame 3 failed");
  t.deepEqual(seen, [0, 1, 2]);
  t.true(state.closed);
  t.is(model.running, 0);
  t.true(model.calls <= 6, `calls ${model.calls}`);
});

test("an error thrown by the source comes after the results of the frames it gave", async (t) => {
  async function* frames() {
    yield frame(0);
    yield frame(1);
    throw new Error("camera unplugged");
  }
  const seen: number[] = [];
  await t.throwsAsync(async () => {
    for await (const { index } of streamDepth(new StandInModel(() => 2), frames())) seen.push(index);
  }, { message: "camera unplugged" });
  t.deepEqual(seen, [0, 1]);
});

test("a result is delivered as soon as it is ready, not held back by a source waiting for its next frame", async (t) => {
  let release!: () => void;
  const secondFrame = new Promise<void>((resolve) => (release = resolve));
  async function* frames() {
    yield frame(0);
    await secondFrame; // a live camera with no new frame yet
    yield frame(1);
  }
  const seen: number[] = [];
  for await (const { index } of streamDepth(new StandInModel(() => 1), frames(), { inflight: 2 })) {
    seen.push(index);
    if (index === 0) release();
  }
  t.deepEqual(seen, [0, 1]);
});

test("an aborted signal rejects with AbortError and closes the source", async (t) => {
  const controller = new AbortController();
  const { state, frames } = countingSource(100);
  const model = new StandInModel(() => 5);
  const seen: number[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const { index } of streamDepth(model, frames, { signal: controller.signal })) {
      seen.push(index);
      if (index === 1) controller.abort();
    }
  }, { instanceOf: AbortError });
  t.is(error.code, "ERR_ENDOSYNTH_ABORTED");
  t.deepEqual(seen, [0, 1]);
  t.true(state.closed);
  t.is(model.running, 0);
});

test("an abort while waiting for a source that never yields still ends the stream", async (t) => {
  const controller = new AbortController();
  async function* frames(): AsyncGenerator<NdArray<"uint8">> {
    await new Promise(() => undefined);
  }
  setTimeout(() => controller.abort(), 20);
  await t.throwsAsync(async () => {
    for await (const _ of streamDepth(new StandInModel(() => 1), frames(), { signal: controller.signal })) t.fail();
  }, { instanceOf: AbortError });
});

test("objects carrying a frame pass their other properties through", async (t) => {
  const items = [0, 1, 2].map((i) => ({ frame: frame(i), timestamp: i * 40, path: `f${i}.png` }));
  const results = [];
  for await (const result of streamDepth(new StandInModel(() => 1), items)) results.push(result);
  t.deepEqual(results.map(({ index, timestamp, path }) => ({ index, timestamp, path })), [
    { index: 0, timestamp: 0, path: "f0.png" },
    { index: 1, timestamp: 40, path: "f1.png" },
    { index: 2, timestamp: 80, path: "f2.png" },
  ]);
  t.is(results[2].frame, items[2].frame);
});

test("bad calls are refused: inflight out of range, a signal that is not an AbortSignal, frames not iterable, an item that is not a frame", async (t) => {
  const model = new StandInModel(() => 1);
  await t.throwsAsync(() => streamDepth(model, [frame(0)], { inflight: 0 }).next(), {
    instanceOf: InputError,
    message: "Expected an integer between 1 and 64 for options.inflight but received 0",
  });
  await t.throwsAsync(() => streamDepth(model, [frame(0)], { signal: {} as never }).next(), {
    instanceOf: InputError,
    message: "Expected an AbortSignal for options.signal but received an object",
  });
  await t.throwsAsync(() => streamDepth(model, 42 as never).next(), {
    instanceOf: InputError,
    message: "Expected an iterable or async iterable of frames for frames but received 42",
  });
  const seen: number[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const { index } of streamDepth(model, [frame(0), "frame.png" as never])) seen.push(index);
  }, { instanceOf: InputError });
  t.is(error.message, 'Expected an NdArray<"uint8"> or an object { frame } for frame 1 but received "frame.png"');
  t.deepEqual(seen, [0]);
});
