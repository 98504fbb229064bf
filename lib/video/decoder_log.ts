/**
 * What a decoding ffmpeg says on stderr, read line by line. ffmpeg runs with `-loglevel level+info`
 * (each line tagged `[error]`, `[warning]`, `[info]`, ...) and a `showinfo` filter as the last
 * step before the raw frames leave it, which logs one line per frame with its number, timestamp
 * and size, e.g.
 *
 *   [Parsed_showinfo_0 @ 0x55d0] [info] n:   3 pts:   3072 pts_time:0.12 ... s:1920x1080 ...
 *
 * Each line is written before its frame's bytes, so the reader can wait for frame k's line when
 * frame k's first bytes arrive. The integer pts and the filter's time base ("config in time_base:
 * 1/12800") give exact times (pts_time is printed with 6 significant digits only).
 * @module
 */
import type { Readable } from "node:stream";

/** One decoded frame as ffmpeg announced it. */
export interface FrameInfo {
  /** Frame number at the filter (0, 1, 2, ...). */
  n: number;
  /** Presentation time in seconds; NaN when the frame has none. */
  pts: number;
  width: number;
  height: number;
}

/** The log level flag every ffmpeg reading frames runs with. */
export const LOG_LEVEL_ARGS = ["-loglevel", "level+info"];

const LINE = /^(?:\[([^\]]+?) @ [^\]]+\] )?\[(panic|fatal|error|warning|info|verbose|debug|trace)\] (.*)$/;
const FRAME = /^n:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:(\S+).*?\ss:(\d+)x(\d+)/;
const TIME_BASE = /^config in time_base: (\d+)\/(\d+)/;
const ERRORS_KEPT = 5;
const TAIL_KEPT = 12;

export class DecoderLog {
  readonly #infos: FrameInfo[] = [];
  #waiters: (() => void)[] = [];
  #ended = false;
  #partial = "";
  #timeBase: [number, number] | undefined;
  readonly #tail: string[] = [];
  /** The first few error lines (decoding errors, read errors), with the component that printed them. */
  readonly errors: string[] = [];
  /** How many error lines ffmpeg printed. */
  errorCount = 0;

  constructor(stderr: Readable) {
    stderr.setEncoding("utf8");
    stderr.on("data", (chunk: string) => this.#receive(chunk));
    stderr.once("close", () => this.#end());
    stderr.once("end", () => this.#end());
  }

  #receive(chunk: string): void {
    const lines = (this.#partial + chunk).split(/\r?\n/);
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  #end(): void {
    if (this.#ended) return;
    if (this.#partial) this.#line(this.#partial);
    this.#partial = "";
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #changed(): Promise<void> {
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #line(line: string): void {
    const parsed = LINE.exec(line);
    if (!parsed) {
      if (line.trim()) this.#keep(line);
      return;
    }
    const [, component = "", level, message] = parsed;
    if (component.startsWith("Parsed_showinfo")) {
      this.#showinfo(message);
      return;
    }
    const text = component ? `[${component}] ${message}` : message;
    if (level === "error" || level === "fatal" || level === "panic") {
      this.errorCount++;
      if (this.errors.length < ERRORS_KEPT) this.errors.push(text);
    }
    this.#keep(text);
  }

  #keep(text: string): void {
    this.#tail.push(text);
    if (this.#tail.length > TAIL_KEPT) this.#tail.shift();
  }

  #showinfo(message: string): void {
    const timeBase = TIME_BASE.exec(message);
    if (timeBase) {
      this.#timeBase = [Number(timeBase[1]), Number(timeBase[2])];
      return;
    }
    const frame = FRAME.exec(message);
    if (!frame) return;
    const [, n, pts, ptsTime, width, height] = frame;
    const exact = pts !== "NOPTS" && this.#timeBase && this.#timeBase[1] > 0 ? (Number(pts) * this.#timeBase[0]) / this.#timeBase[1] : undefined;
    this.#infos.push({ n: Number(n), pts: exact ?? (ptsTime === "NOPTS" ? Number.NaN : Number(ptsTime)), width: Number(width), height: Number(height) });
    this.#notify();
  }

  /** The next frame's announcement; undefined once ffmpeg has closed stderr without one. */
  async next(): Promise<FrameInfo | undefined> {
    while (this.#infos.length === 0 && !this.#ended) await this.#changed();
    return this.#infos.shift();
  }

  /** Resolves once ffmpeg has closed stderr (all its lines are in). */
  async ended(): Promise<void> {
    while (!this.#ended) await this.#changed();
  }

  /** The last lines ffmpeg printed, frame announcements left out, for error messages. */
  tail(): string {
    return this.#tail.join("\n");
  }
}
