/**
 * The WebSocket message framing shared by `/v1/stream` and `/v1/live`: every result is one JSON
 * text message whose `parts` list the binary messages that follow it, in order, each with its
 * name, media type and byte length, e.g.
 *
 * ```json
 * {"type":"depth","frame":3,"width":960,"height":540,"parts":[{"name":"depth","type":"application/x-npy","bytes":2073728}]}
 * ```
 *
 * followed by one binary message of 2073728 bytes. Notices (`hello`, `dropped`, `error`,
 * `configured`, `ended`) are single JSON messages with no parts.
 * @module
 */
import type { WebSocket } from "ws";

/** A binary part of a message and what to say about it in the header. */
export interface Part {
  name: string;
  type: string;
  /** The bytes, possibly in pieces (sent as one message). */
  bytes: Uint8Array | readonly Uint8Array[];
  /** More fields for the header's part entry (e.g. a point count). */
  [field: string]: unknown;
}

function joined(bytes: Uint8Array | readonly Uint8Array[]): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  return bytes.length === 1 ? bytes[0] : Buffer.concat(bytes);
}

/**
 * Closes a socket whose client keeps sending while more than `limit` bytes wait unsent to it (1008,
 * policy violation): every message it sends is answered, so its answers would pile up without end.
 * @returns whether it closed it (the message is then ignored).
 */
export function closedForNotReading(ws: WebSocket, limit: number): boolean {
  if (ws.bufferedAmount <= limit) return false;
  ws.close(1008, "The client sends but does not read what it is sent");
  return true;
}

/** Sends a notice (a JSON message without parts), unless the socket is no longer open. */
export function sendNotice(ws: WebSocket, notice: Record<string, unknown>, sent?: () => void): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(JSON.stringify(notice), sent);
}

/** Sends a header then its parts; `sent` runs once the last part has been written out. */
export function sendWithParts(ws: WebSocket, header: Record<string, unknown>, parts: readonly Part[], sent?: () => void): void {
  if (ws.readyState !== ws.OPEN) return;
  const blobs = parts.map((part) => joined(part.bytes));
  const entries = parts.map(({ bytes: _bytes, ...entry }, index) => ({ ...entry, bytes: blobs[index].byteLength }));
  ws.send(JSON.stringify({ ...header, parts: entries }));
  blobs.forEach((blob, index) => ws.send(blob, { binary: true }, index === blobs.length - 1 ? sent : undefined));
  if (blobs.length === 0) sent?.();
}
