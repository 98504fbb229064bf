// The endosynth live viewer: shows the server's live feed (/v1/live), or frames of a local video,
// image or camera sent to /v1/stream, as input | depth colour map | point cloud. Plain browser
// JavaScript with no dependencies, loaded from this server only (its CSP allows nothing else).
// Message framing: a JSON text message whose "parts" list the binary messages that follow it.

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");

/** ws:// URL of a path on this server, with the page's token and the given parameters. */
function socketUrl(path, parameters = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  for (const [key, value] of Object.entries(parameters)) url.searchParams.set(key, value);
  return url;
}

/** Opens a socket whose messages arrive as (header, parts) once all of a header's parts are in. */
function openSocket(url, onMessage) {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  let pending = null;
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") {
      const header = JSON.parse(event.data);
      if (header.parts && header.parts.length > 0) pending = { header, parts: [] };
      else onMessage(header, []);
      return;
    }
    if (!pending) return;
    pending.parts.push(event.data);
    if (pending.parts.length === pending.header.parts.length) {
      const { header, parts } = pending;
      pending = null;
      onMessage(header, parts);
    }
  });
  return socket;
}

function showError(message) {
  const element = $("error");
  element.textContent = message;
  element.hidden = !message;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- counters ---------------------------------------------------------------------------------

const counters = {
  frames: 0,
  shown: [],
  update(header, latencyMs) {
    this.frames++;
    const now = performance.now();
    this.shown.push(now);
    while (this.shown.length > 0 && this.shown[0] < now - 2000) this.shown.shift();
    const seconds = this.shown.length > 1 ? (now - this.shown[0]) / 1000 : 0;
    $("frames").textContent = String(this.frames);
    $("fps").textContent = seconds > 0 ? ((this.shown.length - 1) / seconds).toFixed(1) : "–";
    $("latency").textContent = latencyMs.toFixed(0);
    $("dropped").textContent = String(header.dropped ?? 0);
  },
};

// ---- pictures ---------------------------------------------------------------------------------

async function drawBytes(canvas, bytes, type) {
  const bitmap = await createImageBitmap(new Blob([bytes], { type }));
  drawBitmap(canvas, bitmap);
  bitmap.close();
}

function drawBitmap(canvas, bitmap) {
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
}

// ---- point cloud: a 2D-canvas projection with a depth buffer ----------------------------------

class CloudView {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.cloud = null;
    this.reset();
    let drag = null;
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, yaw: this.yaw, pitch: this.pitch };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag) return;
      this.yaw = drag.yaw + (event.clientX - drag.x) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, drag.pitch + (event.clientY - drag.y) * 0.01));
      this.render();
    });
    canvas.addEventListener("pointerup", () => (drag = null));
    canvas.addEventListener("dblclick", () => {
      this.reset();
      this.render();
    });
  }

  reset() {
    this.yaw = 0.35;
    this.pitch = 0.2;
  }

  /** positions: float32 x, y, z per point (camera frame, metres); colours: uint8 r, g, b per point. */
  show(buffer, count) {
    const positions = new Float32Array(buffer, 0, count * 3);
    const colours = new Uint8Array(buffer, count * 12, count * 3);
    let cx = 0, cy = 0, cz = 0;
    for (let i = 0; i < count; i++) {
      cx += positions[3 * i];
      cy += positions[3 * i + 1];
      cz += positions[3 * i + 2];
    }
    const centre = count > 0 ? [cx / count, cy / count, cz / count] : [0, 0, 0];
    // Fit the view to where most points are: a few far outliers would shrink the rest to a speck.
    const distances = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      distances[i] = Math.hypot(positions[3 * i] - centre[0], positions[3 * i + 1] - centre[1], positions[3 * i + 2] - centre[2]);
    }
    distances.sort();
    const radius = Math.max(1e-6, count > 0 ? distances[Math.floor(0.9 * (count - 1))] : 0);
    this.cloud = { positions, colours, count, centre, radius };
    this.render();
  }

  render() {
    const { width, height } = this.canvas;
    const image = this.context.createImageData(width, height);
    const pixels = image.data;
    for (let i = 3; i < pixels.length; i += 4) pixels[i] = 255;
    const cloud = this.cloud;
    if (cloud) {
      const depthBuffer = new Float32Array(width * height).fill(Infinity);
      const [cx, cy, cz] = cloud.centre;
      const cosYaw = Math.cos(this.yaw), sinYaw = Math.sin(this.yaw);
      const cosPitch = Math.cos(this.pitch), sinPitch = Math.sin(this.pitch);
      // A virtual camera 2.5 radii from the centre, its focal length fitting the cloud in view.
      const distance = cloud.radius * 2.5;
      const focal = (0.5 * Math.min(width, height) * distance) / cloud.radius;
      const { positions, colours } = cloud;
      for (let i = 0; i < cloud.count; i++) {
        const x = positions[3 * i] - cx, y = positions[3 * i + 1] - cy, z = positions[3 * i + 2] - cz;
        const x1 = cosYaw * x - sinYaw * z;
        const z1 = sinYaw * x + cosYaw * z;
        const y2 = cosPitch * y - sinPitch * z1;
        const z2 = sinPitch * y + cosPitch * z1 + distance;
        if (z2 <= 0) continue;
        const u = Math.round(width / 2 + (focal * x1) / z2);
        const v = Math.round(height / 2 + (focal * y2) / z2);
        for (let dv = 0; dv < 2; dv++) {
          for (let du = 0; du < 2; du++) {
            const pu = u + du, pv = v + dv;
            if (pu < 0 || pv < 0 || pu >= width || pv >= height) continue;
            const at = pv * width + pu;
            if (z2 >= depthBuffer[at]) continue;
            depthBuffer[at] = z2;
            pixels[4 * at] = colours[3 * i];
            pixels[4 * at + 1] = colours[3 * i + 1];
            pixels[4 * at + 2] = colours[3 * i + 2];
          }
        }
      }
    }
    this.context.putImageData(image, 0, 0);
  }
}

// ---- range slider -----------------------------------------------------------------------------

const range = {
  listeners: [],
  set([near, far]) {
    $("range-min").value = String(near);
    $("range-max").value = String(far);
    this.label();
  },
  get() {
    return [Number($("range-min").value), Number($("range-max").value)];
  },
  label() {
    const [near, far] = this.get();
    $("range-min-value").textContent = near.toFixed(3);
    $("range-max-value").textContent = far.toFixed(3);
  },
  /** Keeps near < far, then tells the sockets. */
  changed(moved) {
    let [near, far] = this.get();
    if (near >= far) {
      if (moved === "min") far = Math.min(0.5, near + 0.001);
      else near = Math.max(0, far - 0.001);
      this.set([near, far]);
    }
    this.label();
    for (const listener of this.listeners) listener(this.get());
  },
};
$("range-min").addEventListener("input", () => range.label());
$("range-max").addEventListener("input", () => range.label());
$("range-min").addEventListener("change", () => range.changed("min"));
$("range-max").addEventListener("change", () => range.changed("max"));

function configure(socket, selectedRange) {
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "configure", range: selectedRange }));
}

const cloudView = new CloudView($("cloud"));

function part(header, parts, name) {
  const index = header.parts.findIndex((entry) => entry.name === name);
  return index < 0 ? null : { entry: header.parts[index], bytes: parts[index] };
}

async function showDepth(header, parts) {
  const depth = part(header, parts, "depth");
  const points = part(header, parts, "points");
  await drawBytes($("depth"), depth.bytes, depth.entry.type);
  if (points) cloudView.show(points.bytes, points.entry.count);
  if (header.range) $("legend").textContent = `${header.range[0]}–${header.range[1]} m, red near, blue far`;
}

// ---- the server's live feed ---------------------------------------------------------------------

const live = openSocket(socketUrl("/v1/live"), async (header, parts) => {
  if (header.type === "hello") {
    $("model").textContent = `${header.model} · ${header.backend} · ${header.precision} · endosynth ${header.version}`;
    range.set(header.settings.range);
    setStatus(header.live.running ? "live" : "no live source: send a video, an image or the camera");
  } else if (header.type === "frame") {
    setStatus("live");
    const image = part(header, parts, "image");
    await Promise.all([drawBytes($("input"), image.bytes, image.entry.type), showDepth(header, parts)]);
    counters.update(header, header.latencyMs);
  } else if (header.type === "ended") {
    setStatus(`the live source ended after ${header.live.frames} frames`);
  } else if (header.type === "error") {
    showError(header.error.message);
  }
});
live.addEventListener("close", () => setStatus("disconnected from the server"));
range.listeners.push((selected) => configure(live, selected));

// ---- frames of the user's own: a file or the camera, sent to /v1/stream ------------------------

/** Sends frames of `element` (a video or an image) one or two at a time and shows their depth. */
class LocalSource {
  constructor(element) {
    this.element = element;
    this.sent = new Map();
    this.index = 0;
    this.grab = document.createElement("canvas");
    this.socket = openSocket(socketUrl("/v1/stream", { format: "colormap", points: "1", range: range.get().join(",") }), (header, parts) =>
      this.onMessage(header, parts),
    );
    this.socket.addEventListener("open", () => this.pump());
    this.listener = (selected) => configure(this.socket, selected);
    range.listeners.push(this.listener);
  }

  close() {
    this.closed = true;
    this.socket.close();
    range.listeners.splice(range.listeners.indexOf(this.listener), 1);
    if (this.element.srcObject) for (const track of this.element.srcObject.getTracks()) track.stop();
  }

  get isStill() {
    return this.element instanceof HTMLImageElement;
  }

  async pump() {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN || this.sent.size >= 2) return;
    if (this.isStill && this.index > 0) return;
    const width = this.element.videoWidth || this.element.naturalWidth;
    const height = this.element.videoHeight || this.element.naturalHeight;
    if (!width || !height) {
      setTimeout(() => this.pump(), 50);
      return;
    }
    this.grab.width = width;
    this.grab.height = height;
    this.grab.getContext("2d").drawImage(this.element, 0, 0);
    const bitmap = await createImageBitmap(this.grab);
    const blob = await new Promise((resolve) => this.grab.toBlob(resolve, "image/jpeg", 0.9));
    this.sent.set(this.index++, { bitmap, at: performance.now() });
    this.socket.send(await blob.arrayBuffer());
    if (!this.isStill) requestAnimationFrame(() => this.pump());
  }

  async onMessage(header, parts) {
    if (header.type === "depth" || header.type === "dropped" || header.type === "error") {
      const frame = this.sent.get(header.frame);
      this.sent.delete(header.frame);
      if (header.type === "error") showError(header.error.message);
      if (header.type === "depth" && frame) {
        setStatus(`depth of your ${this.isStill ? "image" : "video"}`);
        drawBitmap($("input"), frame.bitmap);
        await showDepth(header, parts);
        counters.update(header, performance.now() - frame.at);
      }
      frame?.bitmap.close();
      this.pump();
    }
  }
}

let local = null;

function useSource(element) {
  local?.close();
  showError("");
  local = new LocalSource(element);
}

$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (!file) return;
  const url = URL.createObjectURL(file);
  if (file.type.startsWith("image/")) {
    const image = new Image();
    image.addEventListener("load", () => useSource(image), { once: true });
    image.src = url;
    return;
  }
  const video = document.createElement("video");
  Object.assign(video, { src: url, muted: true, loop: true, playsInline: true });
  video.play().then(() => useSource(video), (error) => showError(`Cannot play ${file.name}: ${error.message}`));
});

$("camera").addEventListener("click", async () => {
  try {
    const video = document.createElement("video");
    Object.assign(video, { muted: true, playsInline: true });
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    await video.play();
    useSource(video);
  } catch (error) {
    showError(`No camera: ${error.message}`);
  }
});
