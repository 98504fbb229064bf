/**
 * Who may talk to the server. Bound to a loopback address it answers this machine only; any other
 * address needs a bearer token, sent as `Authorization: Bearer <token>` or, where a browser cannot
 * set headers (the viewer page, WebSockets), as `?token=<token>` in the URL.
 *
 * Without a token the server also refuses requests whose Host is not a loopback name (a web page
 * that rebinds its own domain name to 127.0.0.1 cannot reach it) and WebSocket upgrades from another
 * origin (a web page cannot open a socket to it).
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { describe } from "../is.js";
import { HttpError } from "./http_error.js";

/** Shortest token accepted: guessing one must be hopeless. */
export const MIN_TOKEN_LENGTH = 16;

const LOOPBACK_NAMES = new Set(["localhost", "::1", "[::1]"]);

/** Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only. */
export function isLoopback(host: string): boolean {
  const bare = host.toLowerCase();
  if (LOOPBACK_NAMES.has(bare)) return true;
  return isIP(bare) === 4 && bare.startsWith("127.");
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The token a request carries, from its Authorization header or its `token` query parameter. */
function presentedToken(request: IncomingMessage, query: URLSearchParams): string | undefined {
  const authorization = request.headers.authorization;
  const bearer = authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  return bearer ?? query.get("token") ?? undefined;
}

/** The host name of a Host header (port and IPv6 brackets removed). */
function hostName(hostHeader: string): string {
  const bracketed = hostHeader.match(/^\[([^\]]+)\](?::\d+)?$/);
  if (bracketed) return bracketed[1];
  return hostHeader.replace(/:\d+$/, "");
}

/** Decides whether requests may be served. */
export class AccessPolicy {
  readonly #token: Buffer | undefined;

  constructor(token: string | undefined) {
    // Compared as digests so the comparison takes the same time whatever the lengths.
    this.#token = token === undefined ? undefined : digest(token);
  }

  /** Whether a token is required. */
  get requiresToken(): boolean {
    return this.#token !== undefined;
  }

  /**
   * Throws the refusal of a request: 401 without the right token, 403 for a foreign Host (no
   * token) or a cross-origin WebSocket.
   */
  check(request: IncomingMessage, query: URLSearchParams, upgrade: boolean): void {
    if (this.#token) {
      const given = presentedToken(request, query);
      if (given === undefined || !timingSafeEqual(digest(given), this.#token)) {
        throw new HttpError(401, given === undefined ? "This server needs a token: send Authorization: Bearer <token> or ?token=" : "The token is not this server's", {
          headers: { "WWW-Authenticate": 'Bearer realm="endosynth"' },
        });
      }
    } else {
      const host = request.headers.host;
      if (host === undefined || !isLoopback(hostName(host))) {
        throw new HttpError(403, `Expected a loopback Host (localhost, 127.0.0.1, [::1]) but received ${describe(host ?? "")}: this server is for this machine only`, { key: "Host" });
      }
    }
    if (upgrade) this.#checkOrigin(request);
  }

  /** A browser names the page that opens a WebSocket in Origin: it must be this server's own. */
  #checkOrigin(request: IncomingMessage): void {
    const origin = request.headers.origin;
    if (origin === undefined) return;
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = origin;
    }
    if (originHost !== request.headers.host) {
      throw new HttpError(403, `A WebSocket from ${origin} is refused: only pages served by this server may open one`, { key: "Origin" });
    }
  }
}
