/**
 * Bounded load on loopback: many concurrent clients sending good and bad requests. Every request
 * gets the answer its input calls for, nothing crashes, the queue empties, and memory does not grow
 * with the number of requests served.
 */
import test from "ava";
import { readNpy } from "../../lib/io/npy.js";
import { load } from "../../lib/model.js";
import { encodeNpy } from "../../lib/io/npy.js";
import type { DepthServer } from "../../lib/server/server.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { expectedDepth, heapAfterCollection, npyBytes, postFrame, StandInModel, startServer, testFrame } from "./helpers.js";

const CLIENTS = 16;
const MAX_BODY = 128 * 128 * 3 + 1000;

/** The kinds of request the load mixes, the status each must get (or 503 when the queue is full). */
const KINDS = [
  { name: "good", status: 200, send: (server: DepthServer, seed: number) => postFrame(server, npyBytes(testFrame(128, 128, seed))) },
  { name: "colour map", status: 200, send: (server: DepthServer, seed: number) => postFrame(server, npyBytes(testFrame(128, 128, seed)), { headers: { Accept: "image/png" } }) },
  { name: "wrong dtype", status: 400, send: (server: DepthServer) => postFrame(server, npyBytes({ data: new Float32Array(12), shape: [2, 2, 3], dtype: "float32" })) },
  { name: "too large", status: 413, send: (server: DepthServer) => postFrame(server, new Uint8Array(MAX_BODY + 1)) },
  { name: "media type", status: 415, send: (server: DepthServer) => postFrame(server, new Uint8Array(10), { type: "text/plain" }) },
  { name: "garbage", status: 400, send: (server: DepthServer) => postFrame(server, new Uint8Array(3000).fill(7)) },
] as const;

/** `CLIENTS` clients each sending `perClient` requests in turn; returns a tally of (kind, status). */
async function hammer(server: DepthServer, perClient: number): Promise<Map<string, number>> {
  const tally = new Map<string, number>();
  const problems: string[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let i = 0; i < perClient; i++) {
        const kind = KINDS[(client + i) % KINDS.length];
        const seed = client * 1000 + i;
        const response = await kind.send(server, seed);
        const body = Buffer.from(await response.arrayBuffer());
        const key = `${kind.name} ${response.status}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        if (response.status !== kind.status && response.status !== 503) problems.push(`${key}: ${body.toString().slice(0, 200)}`);
        // Each answer must be its own frame's depth, never another client's.
        if (kind.name === "good" && response.status === 200) {
          const expected = Buffer.concat(encodeNpy(expectedDepth(testFrame(128, 128, seed))));
          if (!body.equals(expected)) problems.push(`good ${seed}: another frame's depth`);
        }
      }
    }),
  );
  if (problems.length > 0) throw new Error(`${problems.length} unexpected answers, e.g. ${problems.slice(0, 3).join("; ")}`);
  return tally;
}

function memoryInUse(): number {
  const heap = heapAfterCollection();
  return heap + process.memoryUsage().arrayBuffers;
}

test("16 clients, 1600 good and bad requests: each gets its answer, and memory does not grow with them", async (t) => {
  const model = new StandInModel(1);
  const server = await startServer(t, model, { inflight: 2, queue: 8, maxBodyBytes: MAX_BODY });
  await hammer(server, 25); // warm-up: code paths compiled, pools filled
  const before = memoryInUse();
  const tally = await hammer(server, 100);
  const after = memoryInUse();
  const total = [...tally.values()].reduce((sum, count) => sum + count, 0);
  t.is(total, CLIENTS * 100);
  for (const kind of KINDS) t.true((tally.get(`${kind.name} ${kind.status}`) ?? 0) > 0, `${kind.name} answered ${kind.status} at least once`);
  // 1600 requests of which ~530 carry a 48 KB frame: a leak of one body each would be ~26 MB.
  t.true(after - before < 8 * 2 ** 20, `memory in use grew by ${((after - before) / 2 ** 20).toFixed(2)} MiB`);
  const health = await (await fetch(`${server.url}health`)).json();
  t.like(health, { status: "ok", queue: { running: 0, waiting: 0 } });
  t.true(model.maxRunning <= 2);
  t.log(`memory in use: ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after`);
  t.log([...tally].map(([key, count]) => `${key}: ${count}`).join(", "));
});

test("the tiny model under 16 concurrent clients: every answer is its own frame's depth, or a 503", async (t) => {
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const model = await load("endodac", { checkpoint: fixture("endodac", "tiny.pth"), cacheDir: cache.path });
  t.teardown(() => model.dispose());
  const server = await startServer(t, model, { inflight: 2, queue: 6 });
  const input = readNpy(fixture("endodac", "input.npy"));
  // Sixteen different frames: crops of the fixture at different offsets.
  const frames = Array.from({ length: CLIENTS }, (_, client) => {
    const [height, width] = [96, 128];
    const data = new Uint8Array(height * width * 3);
    for (let y = 0; y < height; y++) {
      const from = ((y + client * 8) * 480 + client * 16) * 3;
      data.set((input.data as Uint8Array).subarray(from, from + width * 3), y * width * 3);
    }
    return { data, shape: [height, width, 3], dtype: "uint8" as const };
  });
  const expected: Buffer[] = [];
  for (const frame of frames) expected.push(Buffer.concat(encodeNpy(await model.infer(frame))));
  const statuses = await Promise.all(
    frames.map(async (frame, client) => {
      const response = await postFrame(server, npyBytes(frame));
      const body = Buffer.from(await response.arrayBuffer());
      if (response.status === 200) t.true(body.equals(expected[client]), `client ${client}`);
      return response.status;
    }),
  );
  t.deepEqual([...new Set(statuses)].sort(), statuses.includes(503) ? [200, 503] : [200]);
  t.true(statuses.filter((status) => status === 200).length >= 8, statuses.join(" "));
});
