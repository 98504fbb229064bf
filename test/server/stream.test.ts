import test from "ava";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import sharp from "sharp";
import { WebSocket } from "ws";
import { readNpy } from "../../lib/io/npy.js";
import { depthToPointCloud } from "../../lib/geometry/pointcloud.js";
import { depth2rgb } from "../../lib/viz/depth2rgb.js";
import { readImage } from "../../lib/io/image.js";
import { Client, expectedDepth, npyBytes, socketUrl, StandInModel, startServer, testFrame } from "./helpers.js";

const isDepth = (message: { header: Record<string, any> }) => message.header.type === "depth";

test("/v1/stream answers every frame with its depth, in the order sent", async (t) => {
  // Later frames are faster: order must come from the server, not from finishing times.
  const model = new StandInModel(0);
  const server = await startServer(t, model, { inflight: 2 });
  const client = new Client(socketUrl(server, "v1/stream"));
  await client.opened();
  const frames = [0, 1].map((seed) => testFrame(3, 5, seed));
  model.latencyMs = 150;
  client.ws.send(npyBytes(frames[0]));
  await new Promise((resolve) => setTimeout(resolve, 20));
  model.latencyMs = 0;
  client.ws.send(npyBytes(frames[1]));
  const answers = await client.waitFor(isDepth, 2);
  t.deepEqual(answers.map((answer) => answer.header.frame), [0, 1]);
  for (const [index, answer] of answers.entries()) {
    t.like(answer.header, { width: 5, height: 3, format: "npy", dropped: 0, parts: [{ name: "depth", type: "application/x-npy", bytes: answer.parts[0].length }] });
    // A copy: a ws Buffer may sit at any offset of its memory (and readNpy of a Buffer needs an aligned one).
    t.deepEqual(readNpy(new Uint8Array(answer.parts[0])).data, expectedDepth(frames[index]).data);
    t.true(answer.header.latencyMs >= answer.header.inferMs);
  }
  const hello = client.messages[0].header;
  t.like(hello, { type: "hello", model: "stand-in", backend: "none", precision: "fp32", settings: { format: "npy", points: false } });
  client.close();
});

test("frames that come faster than depth: the oldest waiting one is dropped, and the client told", async (t) => {
  const model = new StandInModel();
  const server = await startServer(t, model, { inflight: 1 });
  const client = new Client(socketUrl(server, "v1/stream"));
  await client.opened();
  const release = model.hold();
  for (let seed = 0; seed < 5; seed++) client.ws.send(npyBytes(testFrame(2, 2, seed)));
  // Frame 0 runs (held); 1, 2, 3 each wait until replaced by the next; 4 waits, and runs once 0 is done.
  // The notices come in frame order, after frame 0's depth: give the frames time to arrive, then let 0 finish.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  release();
  const done = await client.waitFor((message) => isDepth(message) || message.header.type === "dropped", 5);
  t.deepEqual(
    done.map(({ header }) => [header.type, header.frame]),
    [["depth", 0], ["dropped", 1], ["dropped", 2], ["dropped", 3], ["depth", 4]],
  );
  const dropped = done.filter(({ header }) => header.type === "dropped").map(({ header }) => header);
  t.deepEqual(dropped.map((header) => header.dropped), [1, 2, 3]);
  t.is(dropped[0].reason, "frame 2 arrived while 1 earlier frames were in progress");
  t.is(done[4].header.dropped, 3);
  t.is(model.calls, 2);
  client.close();
});

test("configure switches to colour maps at a range and adds sampled point clouds", async (t) => {
  const server = await startServer(t, new StandInModel(), { intrinsics: { fx: 40 }, maxPoints: 100 });
  const client = new Client(socketUrl(server, "v1/stream?format=colormap"));
  await client.opened();
  client.ws.send(JSON.stringify({ type: "configure", range: [0.05, 0.2], points: true }));
  await client.waitFor((message) => message.header.type === "configured");
  const frame = testFrame(30, 40, 3);
  client.ws.send(npyBytes(frame));
  const [answer] = await client.waitFor(isDepth);
  t.like(answer.header, { format: "colormap", range: [0.05, 0.2] });
  const depth = expectedDepth(frame);
  t.deepEqual((await readImage(answer.parts[0])).data, depth2rgb(depth, 0.05, 0.2).data);
  // 1200 pixels for 100 points: every 4th pixel both ways, 8 x 10 of them, back-projected as at full size.
  const points = answer.header.parts[1];
  t.like(points, { name: "points", type: "application/x-endosynth-points", count: 80, stride: 4 });
  const bytes = answer.parts[1];
  const positions = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 80 * 12));
  const full = depthToPointCloud(depth, { fx: 40, fy: 40, cx: 19.5, cy: 14.5 }, { rgb: frame });
  const sampledIndex = (v: number, u: number) => v * 40 + u;
  for (const [k, [v, u]] of [[0, [0, 0]], [9, [0, 36]], [79, [28, 36]]] as const) {
    const at = sampledIndex(v, u);
    t.deepEqual(Array.from(positions.subarray(3 * k, 3 * k + 3)), Array.from(full.points.data.subarray(3 * at, 3 * at + 3)), `point ${k}`);
    t.deepEqual(Array.from(bytes.subarray(80 * 12 + 3 * k, 80 * 12 + 3 * k + 3)), Array.from(full.colors!.data.subarray(3 * at, 3 * at + 3)));
  }
  client.close();
});

test("a bad frame or message gets an error notice for it; the stream goes on", async (t) => {
  const server = await startServer(t, new StandInModel());
  const client = new Client(socketUrl(server, "v1/stream"));
  await client.opened();
  client.ws.send(Buffer.from("not a frame"));
  client.ws.send("{nonsense");
  client.ws.send(JSON.stringify({ type: "configure", colour: "red" }));
  client.ws.send(await sharp(Buffer.alloc(12, 7), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer());
  const errors = await client.waitFor((message) => message.header.type === "error", 3);
  t.is(errors[0].header.frame, 0);
  t.is(errors[0].header.error.message, "Expected frame 0 to be a PNG, a JPEG or a .npy file but it starts with bytes 6e6f742061206672");
  t.regex(errors[1].header.error.message, /Expected a JSON text message/);
  t.is(errors[2].header.error.message, 'Unknown field "colour" in a configure message; known fields are format, range, points');
  const [answer] = await client.waitFor(isDepth);
  t.like(answer.header, { frame: 1, width: 2, height: 2 });
  client.close();
});

test("a message over maxBodyBytes closes that socket with 1009; the server goes on", async (t) => {
  const server = await startServer(t, new StandInModel(), { maxBodyBytes: 1000 });
  const client = new Client(socketUrl(server, "v1/stream"));
  await client.opened();
  client.ws.send(new Uint8Array(5000));
  const [code] = await once(client.ws, "close");
  t.is(code, 1009);
  t.is((await fetch(`${server.url}health`)).status, 200);
});

test("bad stream parameters, other paths, other origins and missing tokens are refused at the upgrade", async (t) => {
  const token = "a-token-of-enough-length";
  const server = await startServer(t, new StandInModel(), { token });
  const refusal = async (path: string, headers: Record<string, string> = {}) => {
    const ws = new WebSocket(socketUrl(server, path), { headers });
    const [, response] = await once(ws, "unexpected-response");
    let body = "";
    for await (const chunk of response) body += chunk;
    return { status: response.statusCode as number, message: JSON.parse(body).error.message as string };
  };
  t.like(await refusal("v1/stream"), { status: 401 });
  t.like(await refusal(`v1/stream?token=${token}&format=jpeg`), { status: 400, message: 'Expected one of npy, colormap, mm16 for format but received "jpeg"' });
  t.like(await refusal(`v1/elsewhere?token=${token}`), { status: 404 });
  t.like(await refusal(`v1/live?token=${token}`, { Origin: "http://attacker.example" }), { status: 403 });
  const allowed = new Client(socketUrl(server, `v1/stream?token=${token}`), { headers: { Origin: server.url.slice(0, -1) } });
  await allowed.opened();
  allowed.close();
  t.pass();
});

/** A masked client text frame (RFC 6455) of a short payload. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Resolves once this process has used almost no CPU for 200 ms (at most 60 s of waiting). */
async function untilIdle(): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    const before = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const used = process.cpuUsage(before);
    if (used.user + used.system < 20_000) return;
  }
}

/**
 * Scans the server's frames (unmasked) as they arrive, from `initial` on, and resolves with the code
 * of its close frame (undefined if the connection ends without one).
 */
function closeCodeOf(socket: Socket, initial: Buffer): Promise<number | undefined> {
  return new Promise((resolve) => {
    let pending = initial;
    const scan = () => {
      while (pending.length >= 2) {
        const opcode = pending[0] & 0x0f;
        let length = pending[1] & 0x7f;
        let header = 2;
        if (length === 126) (length = pending.length >= 4 ? pending.readUInt16BE(2) : Infinity), (header = 4);
        else if (length === 127) (length = pending.length >= 10 ? Number(pending.readBigUInt64BE(2)) : Infinity), (header = 10);
        if (pending.length < header + length) return;
        if (opcode === 0x8) return resolve(pending.readUInt16BE(header));
        pending = pending.subarray(header + length);
      }
    };
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      scan();
    });
    socket.on("close", () => resolve(undefined));
    scan();
  });
}

test("a client that sends but never reads is disconnected with 1008 instead of its answers piling up", async (t) => {
  const server = await startServer(t, new StandInModel(), { maxBodyBytes: 1000, maxPixels: 100, maxPoints: 100 });
  const socket = connect(server.port, server.host);
  t.teardown(() => socket.destroy());
  await once(socket, "connect");
  socket.write(
    `GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  let handshake = Buffer.alloc(0);
  while (!handshake.includes("\r\n\r\n")) handshake = Buffer.concat([handshake, (await once(socket, "data"))[0] as Buffer]);
  t.regex(handshake.toString("latin1"), /^HTTP\/1\.1 101 /);
  // Stop reading, then send 300,000 messages (20 MB) each answered by a ~250-byte error notice.
  socket.pause();
  const closed = closeCodeOf(socket, handshake.subarray(handshake.indexOf("\r\n\r\n") + 4));
  const message = clientTextFrame("x".repeat(60));
  if (!socket.write(Buffer.concat(Array.from({ length: 300_000 }, () => message)))) await once(socket, "drain");
  // The server (in this process) has read and answered all of it once the process goes idle: far
  // more unsent notices (~75 MB) than the limit (~9 MiB here) and the kernel's buffers hold.
  await untilIdle();
  socket.resume();
  t.is(await closed, 1008);
  t.is((await fetch(`${server.url}health`)).status, 200);
});
