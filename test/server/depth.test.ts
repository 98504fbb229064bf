import test from "ava";
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { readImage } from "../../lib/io/image.js";
import { encodeNpy, readNpy } from "../../lib/io/npy.js";
import { load, type Model } from "../../lib/model.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { npyBytes, postFrame, startServer } from "./helpers.js";

// One real model for the file: the tiny EndoDAC is the fastest of the four.
let model: Model;
const cache = temporaryDirectory();

test.before(async () => {
  model = await load("endodac", { checkpoint: fixture("endodac", "tiny.pth"), cacheDir: cache.path });
});

test.after.always(async () => {
  await model?.dispose();
  cache.cleanup();
});

const inputNpy = () => readFileSync(fixture("endodac", "input.npy"));
const input = () => readNpy(fixture("endodac", "input.npy")) as NdArray<"uint8">;

test("POST /v1/depth with a .npy frame answers the float32 .npy that infer gives, byte for byte", async (t) => {
  const server = await startServer(t, model);
  const response = await postFrame(server, inputNpy());
  t.is(response.status, 200, await response.clone().text());
  t.is(response.headers.get("content-type"), "application/x-npy");
  t.regex(response.headers.get("server-timing") ?? "", /^infer;dur=\d+(\.\d)?$/);
  const body = Buffer.from(await response.arrayBuffer());
  const expected = Buffer.concat(encodeNpy(await model.infer(input())));
  t.true(body.equals(expected));
  const depth = readNpy(body);
  t.deepEqual([depth.dtype, depth.shape], ["float32", [360, 480]]);
});

test("a PNG or JPEG frame gives the depth of its decoded pixels, as infer of readImage does", async (t) => {
  const server = await startServer(t, model);
  const frame = input();
  const raw = { raw: { width: 480, height: 360, channels: 3 as const } };
  for (const [type, bytes] of [
    ["image/png", await sharp(frame.data, raw).png().toBuffer()],
    ["image/jpeg", await sharp(frame.data, raw).jpeg({ quality: 70 }).toBuffer()],
  ] as const) {
    const response = await postFrame(server, bytes, { type });
    t.is(response.status, 200, type);
    const expected = Buffer.concat(encodeNpy(await model.infer(await readImage(bytes))));
    t.true(Buffer.from(await response.arrayBuffer()).equals(expected), type);
  }
});

test("Accept: image/png answers the depth2rgb colour map over ?range=, default 0.02-0.2 m", async (t) => {
  const server = await startServer(t, model);
  const depth = await model.infer(input());
  for (const [query, near, far] of [["", 0.02, 0.2], ["?range=0.05,0.15", 0.05, 0.15]] as const) {
    const response = await postFrame(server, inputNpy(), { query, headers: { Accept: "image/png" } });
    t.is(response.status, 200);
    t.is(response.headers.get("content-type"), "image/png");
    const picture = await readImage(new Uint8Array(await response.arrayBuffer()));
    t.true(Buffer.from(picture.data).equals(Buffer.from(depth2rgb(depth, near, far).data)), query);
  }
});

test("?format=mm16 answers a 16-bit grey PNG of the depth in whole millimetres", async (t) => {
  const server = await startServer(t, model);
  const depth = await model.infer(input());
  const response = await postFrame(server, inputNpy(), { query: "?format=mm16" });
  t.is(response.status, 200);
  t.is(response.headers.get("content-type"), "image/png");
  const png = Buffer.from(await response.arrayBuffer());
  const metadata = await sharp(png).metadata();
  t.deepEqual([metadata.width, metadata.height, metadata.channels, metadata.depth], [480, 360, 1, "ushort"]);
  const { data } = await sharp(png).toColourspace("grey16").raw({ depth: "ushort" }).toBuffer({ resolveWithObject: true });
  const millimetres = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  let worst = 0;
  for (let i = 0; i < millimetres.length; i++) worst = Math.max(worst, Math.abs(millimetres[i] - depth.data[i] * 1000));
  t.true(worst <= 0.5, `largest difference from the depth: ${worst} mm`);
  t.true(millimetres.some((value) => value !== millimetres[0]));
});

test("an RGBA .npy frame is accepted as infer accepts it (alpha ignored)", async (t) => {
  const server = await startServer(t, model);
  const rgb = input();
  const rgba = new Uint8Array(360 * 480 * 4);
  for (let p = 0; p < 360 * 480; p++) rgba.set(rgb.data.subarray(3 * p, 3 * p + 3), 4 * p), (rgba[4 * p + 3] = 99);
  const response = await postFrame(server, npyBytes({ data: rgba, shape: [360, 480, 4], dtype: "uint8" }));
  t.is(response.status, 200);
  t.true(Buffer.from(await response.arrayBuffer()).equals(Buffer.concat(encodeNpy(await model.infer(rgb)))));
});

test("GET /health names the model, backend, precision and package version", async (t) => {
  const server = await startServer(t, model);
  const response = await fetch(`${server.url}health`);
  t.is(response.status, 200);
  const health = (await response.json()) as { queue: Record<string, number> };
  const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  t.like(health, { status: "ok", model: "endodac", backend: "onnxruntime", precision: "fp32", version, live: { running: false } });
  t.like(health.queue, { running: 0, waiting: 0, inflight: 2, capacity: 8 });
});
