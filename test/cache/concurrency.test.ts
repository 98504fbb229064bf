/**
 * Processes sharing one cache: several loading the same model into an empty cache all succeed
 * with the same model, one of them converts, and nothing temporary is left; a conversion killed
 * at random instants leaves a cache that the next process uses or rebuilds, never a broken one.
 */
import test from "ava";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { seededRandom, startChild } from "../support/spawn.js";

const PROCESSES = 4;
const ROUNDS = 10;

test(`${PROCESSES} processes x ${ROUNDS} rounds loading one model into an empty cache: no failure, one entry, nothing temporary left`, async (t) => {
  const checkpoint = fixture("dav1", "tiny.pth");
  const depths = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const cache = temporaryDirectory();
    try {
      const children = Array.from({ length: PROCESSES }, () => startChild("load", ["dav1", checkpoint, cache.path]));
      const exits = await Promise.all(children.map((child) => child.exited));
      exits.forEach((exit, i) => t.is(exit.code, 0, `round ${round + 1}, process ${i + 1}: ${children[i]!.output()}`));
      for (const child of children) depths.add(child.output().trim());
      t.is(readdirSync(join(cache.path, "onnx")).length, 1, `round ${round + 1}: ${readdirSync(join(cache.path, "onnx")).join(", ")}`);
    } finally {
      cache.cleanup();
    }
  }
  t.is(depths.size, 1, `every process computed the same depth: ${[...depths].join(", ")}`);
});

test("loads killed at random instants leave a cache the next load uses or rebuilds, and no temporary behind", async (t) => {
  const checkpoint = fixture("dav2", "tiny.pth");
  const cache = temporaryDirectory();
  t.teardown(cache.cleanup);
  const random = seededRandom(7);
  for (let i = 0; i < 10; i++) {
    const run = startChild("load", ["dav2", checkpoint, cache.path]);
    await new Promise((resolve) => setTimeout(resolve, 500 + random() * 2500));
    run.child.kill("SIGKILL");
    await run.exited;
    // A kill after the entry was made leaves it; clear it now and then so later kills hit conversions too.
    if (i % 3 === 2) rmSync(join(cache.path, "onnx"), { recursive: true, force: true });
  }
  const last = startChild("load", ["dav2", checkpoint, cache.path]);
  t.is((await last.exited).code, 0, last.output());
  t.deepEqual(
    readdirSync(join(cache.path, "onnx")).filter((name) => name.startsWith(".")),
    [],
    "no temporary folder or lock is left",
  );
});
