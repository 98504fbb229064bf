/**
 * The live viewer's files: a static page, its script and its style sheet, shipped as they are in
 * `lib/server/viewer/` (the same place relative to this module whether it runs from `lib/` or from
 * the compiled `dist/`). Served with a Content-Security-Policy that lets the page load nothing but
 * its own files and talk to nothing but this server: it works offline, and cannot leak a frame.
 * @module
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { FileFormatError } from "../errors.js";

/** Where the viewer's files are. */
const VIEWER_DIR = fileURLToPath(new URL("../../lib/server/viewer/", import.meta.url));

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/viewer.js": { file: "viewer.js", type: "text/javascript; charset=utf-8" },
  "/viewer.css": { file: "viewer.css", type: "text/css; charset=utf-8" },
  "/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

/** Headers of every viewer file. */
export const VIEWER_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  // The URL may carry the token: never cache what it returns.
  "Cache-Control": "no-store",
};

/** A viewer file, ready to send. */
export interface ViewerFile {
  type: string;
  body: Buffer;
}

/** Reads the viewer's files once, at start, so a damaged install fails then and not on a request. */
export async function loadViewer(): Promise<ReadonlyMap<string, ViewerFile>> {
  const files = new Map<string, ViewerFile>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const location = `${VIEWER_DIR}${file}`;
    try {
      files.set(path, { type, body: await readFile(location) });
    } catch (error) {
      throw new FileFormatError(`The viewer's file ${location} cannot be read (is the package complete?): ${(error as Error).message}`, { file: location, cause: error });
    }
  }
  return files;
}
