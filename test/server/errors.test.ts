import test from "ava";
import { request } from "node:http";
import { createServer } from "node:net";
import sharp from "sharp";
import { InputError } from "../../lib/errors.js";
import { serveDepth } from "../../lib/server/server.js";
import { npyBytes, postFrame, StandInModel, startServer, testFrame } from "./helpers.js";

/** The JSON error of a response, after checking its status. */
async function errorOf(t: { is(a: unknown, b: unknown, m?: string): void }, response: Response, status: number) {
  t.is(response.status, status, `status of ${response.url}`);
  t.is(response.headers.get("content-type"), "application/json; charset=utf-8");
  const body = (await response.json()) as { error: { status: number; code: string; message: string; key?: string } };
  t.is(body.error.status, status);
  return body.error;
}

const frame = npyBytes(testFrame(4, 6));

test("a frame in the wrong dtype, shape or format is a 400 naming what was wrong", async (t) => {
  const server = await startServer(t, new StandInModel());
  const float = npyBytes({ data: new Float32Array(4 * 6 * 3), shape: [4, 6, 3], dtype: "float32" });
  t.regex((await errorOf(t, await postFrame(server, float), 400)).message, /dtype uint8.*float32/);
  const grey = npyBytes({ data: new Uint8Array(24), shape: [4, 6], dtype: "uint8" });
  t.regex((await errorOf(t, await postFrame(server, grey), 400)).message, /shape \[H, W, 3\] or \[H, W, 4\].*\[4, 6\]/);
  const truncated = frame.subarray(0, frame.length - 5);
  t.regex((await errorOf(t, await postFrame(server, truncated), 400)).message, /truncated \.npy data/);
  const png = await sharp(Buffer.alloc(12), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
  const mislabelled = await errorOf(t, await postFrame(server, png, { type: "image/jpeg" }), 400);
  t.is(mislabelled.message, "Expected body to be image/jpeg but it is image/png (say so in its Content-Type)");
  const broken = await errorOf(t, await postFrame(server, png.subarray(0, 40), { type: "image/png" }), 400);
  t.is(broken.code, "ERR_ENDOSYNTH_FILE_FORMAT");
  t.is((await errorOf(t, await postFrame(server, new Uint8Array(0)), 400)).message, "Expected body to be application/x-npy but it is empty");
});

test("an image declaring more pixels than maxPixels is refused before it is decoded", async (t) => {
  const server = await startServer(t, new StandInModel(), { maxPixels: 100 });
  const png = await sharp({ create: { width: 20, height: 10, channels: 3, background: "black" } }).png().toBuffer();
  t.is((await errorOf(t, await postFrame(server, png, { type: "image/png" }), 400)).message, "Expected at most 100 pixels in body but it declares 20x10");
});

test("an unknown Content-Type is a 415 listing the accepted ones", async (t) => {
  const server = await startServer(t, new StandInModel());
  const error = await errorOf(t, await postFrame(server, frame, { type: "text/plain" }), 415);
  t.is(error.message, 'Expected a frame as image/png, image/jpeg, application/x-npy but received Content-Type "text/plain"');
  t.is(error.code, "ERR_ENDOSYNTH_MEDIA_TYPE");
});

test("a body over maxBodyBytes is a 413, whether its length is declared or it streams", async (t) => {
  const server = await startServer(t, new StandInModel(), { maxBodyBytes: 1000 });
  t.regex((await errorOf(t, await postFrame(server, new Uint8Array(5000)), 413)).message, /limit of 1000 bytes \(5000 bytes are declared\)/);
  const chunks = (async function* () {
    for (let i = 0; i < 20; i++) yield new Uint8Array(100);
  })();
  // A body of unknown length, sent in chunks.
  const streamed = await fetch(`${server.url}v1/depth`, { method: "POST", body: ReadableStream.from(chunks), duplex: "half", headers: { "Content-Type": "application/x-npy" } } as RequestInit);
  t.regex((await errorOf(t, streamed, 413)).message, /limit of 1000 bytes \(more arrived\)/);
  t.is((await fetch(`${server.url}health`)).status, 200);
});

test("bad parameters are 400s naming them; an Accept the server cannot meet is a 406", async (t) => {
  const server = await startServer(t, new StandInModel());
  t.is((await errorOf(t, await postFrame(server, frame, { query: "?rnage=0,1" }), 400)).key, "rnage");
  t.regex((await errorOf(t, await postFrame(server, frame, { query: "?format=colormap&range=0.2,0.1" }), 400)).message, /two increasing numbers.*"0\.2,0\.1"/);
  t.regex((await errorOf(t, await postFrame(server, frame, { query: "?range=0.01,0.1" }), 400)).message, /range applies to colour maps/);
  t.regex((await errorOf(t, await postFrame(server, frame, { query: "?format=tiff" }), 400)).message, /one of npy, colormap, mm16 for format but received "tiff"/);
  t.is((await errorOf(t, await postFrame(server, frame, { headers: { Accept: "application/json" } }), 406)).key, "Accept");
  const preferred = await postFrame(server, frame, { headers: { Accept: "image/png;q=0.9, application/x-npy;q=0.5" } });
  t.is(preferred.headers.get("content-type"), "image/png");
  const either = await postFrame(server, frame, { headers: { Accept: "*/*" } });
  t.is(either.headers.get("content-type"), "application/x-npy");
});

test("unknown paths are 404s and wrong methods 405s with Allow", async (t) => {
  const server = await startServer(t, new StandInModel());
  t.regex((await errorOf(t, await fetch(`${server.url}v2/depth`), 404)).message, /POST \/v1\/depth/);
  const get = await fetch(`${server.url}v1/depth`);
  t.is((await errorOf(t, get, 405)).message, "GET is not allowed here; use POST");
  t.is(get.headers.get("allow"), "POST");
  t.is((await fetch(`${server.url}health`, { method: "DELETE" })).headers.get("allow"), "GET, HEAD");
});

test("a full queue answers 503 with Retry-After at once, and the admitted requests all succeed", async (t) => {
  const model = new StandInModel();
  const server = await startServer(t, model, { inflight: 1, queue: 2 });
  const release = model.hold();
  const answered: Response[] = [];
  const requests = Array.from({ length: 6 }, () => postFrame(server, frame).then((response) => (answered.push(response), response)));
  // One request infers, two wait, three are refused while the model is held.
  while (answered.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(answered.map((response) => response.status), [503, 503, 503]);
  release();
  const responses = await Promise.all(requests);
  t.deepEqual(responses.map((response) => response.status).sort(), [200, 200, 200, 503, 503, 503]);
  const busy = responses.find((response) => response.status === 503)!;
  t.regex(busy.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
  t.is((await errorOf(t, busy, 503)).code, "ERR_ENDOSYNTH_BUSY");
  t.is(model.maxRunning, 1);
});

test("a request not answered within timeoutMs is a 504; a later one is served", async (t) => {
  const model = new StandInModel(800);
  const server = await startServer(t, model, { timeoutMs: 200 });
  const error = await errorOf(t, await postFrame(server, frame), 504);
  t.is(error.message, "The request took longer than 200 ms");
  model.latencyMs = 0;
  t.is((await postFrame(server, frame)).status, 200);
});

test("a body that does not arrive within timeoutMs is a 408", async (t) => {
  const server = await startServer(t, new StandInModel(), { timeoutMs: 300 });
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const slow = request(`${server.url}v1/depth`, { method: "POST", headers: { "Content-Type": "application/x-npy", "Content-Length": "1000" } }, (response) => {
      let text = "";
      response.setEncoding("utf8").on("data", (chunk) => (text += chunk)).on("end", () => resolve({ status: response.statusCode!, body: text }));
    });
    slow.on("error", reject);
    slow.write(new Uint8Array(10));
  });
  t.is(status, 408);
  t.regex(JSON.parse(body).error.message, /did not arrive within the server's timeout \(10 bytes received\)/);
});

test("a failing model is a 500 with its message, and the server goes on", async (t) => {
  const server = await startServer(t, new StandInModel());
  const failing = testFrame(2, 2);
  failing.data[0] = 255;
  const error = await errorOf(t, await postFrame(server, npyBytes(failing)), 500);
  t.is(error.message, "the stand-in fails on frames starting with 255");
  t.is((await postFrame(server, frame)).status, 200);
});

test("with a token, requests need it as a bearer header or ?token=", async (t) => {
  const token = "0123456789abcdef-token";
  const server = await startServer(t, new StandInModel(), { token });
  const missing = await fetch(`${server.url}health`);
  t.is((await errorOf(t, missing, 401)).code, "ERR_ENDOSYNTH_UNAUTHORIZED");
  t.is(missing.headers.get("www-authenticate"), 'Bearer realm="endosynth"');
  t.is((await errorOf(t, await fetch(`${server.url}health`, { headers: { Authorization: "Bearer wrong-token-0000000" } }), 401)).message, "The token is not this server's");
  t.is((await fetch(`${server.url}health`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  t.is((await fetch(`${server.url}?token=${token}`)).status, 200);
  t.is((await postFrame(server, frame, { query: `?token=${token}` })).status, 200);
});

test("without a token, a Host that is not loopback is refused (DNS rebinding)", async (t) => {
  const server = await startServer(t, new StandInModel());
  const status = await new Promise<number>((resolve, reject) => {
    request(`${server.url}health`, { headers: { Host: "attacker.example:8731" } }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    })
      .on("error", reject)
      .end();
  });
  t.is(status, 403);
  t.is((await fetch(`${server.url.replace("127.0.0.1", "localhost")}health`)).status, 200);
});

test("binding to an address other than loopback needs a token of 16 characters or more", (t) => {
  const model = new StandInModel();
  t.throws(() => serveDepth(model, { host: "0.0.0.0" }), { instanceOf: InputError, message: /Binding to 0\.0\.0\.0 lets other machines send requests: give a token/ });
  t.throws(() => serveDepth(model, { token: "short" }), { instanceOf: InputError, message: /at least 16 printable ASCII characters/ });
  t.throws(() => serveDepth(model, { port: 70000 }), { instanceOf: InputError, message: "Expected an integer between 0 and 65535 for options.port but received 70000" });
  t.throws(() => serveDepth(model, { range: [0.2, 0.1] }), { instanceOf: InputError, message: /options\.range/ });
  t.throws(() => serveDepth(model, { intrinsics: { fx: 0 } }), { instanceOf: InputError, message: /non-zero focal length/ });
  t.throws(() => serveDepth(model, { colour: true } as never), { instanceOf: InputError, message: /Unknown option "colour"/ });
  t.throws(() => serveDepth({} as never), { instanceOf: InputError, message: /a model \(from load\(\)\) for model/ });
});

test("a port in use is an InputError naming it", async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  await t.throwsAsync(serveDepth(new StandInModel(), { port }), { instanceOf: InputError, message: `Cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE); choose another port or host` });
});

test("close() answers the requests in progress, then refuses connections", async (t) => {
  const model = new StandInModel();
  const server = await startServer(t, model);
  const release = model.hold();
  const inProgress = postFrame(server, frame);
  while (model.running === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const closed = server.close();
  release();
  t.is((await inProgress).status, 200);
  await closed;
  await t.throwsAsync(fetch(`${server.url}health`));
});
