/**
 * One HTTP(S) GET, optionally of a byte range, following redirects, with a timeout on every wait
 * (connecting, the answer, each chunk of the body) and cancellation. Failures are typed: a
 * {@link DownloadTimeoutError} for a server that stops answering, a {@link DownloadError} for
 * everything else, an {@link AbortError} when the signal fires.
 * @internal
 * @module
 */
import { type ClientRequest, type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { AbortError, DownloadError, DownloadTimeoutError } from "../errors.js";

/** Redirects followed before giving up (S3, CDNs and intranet proxies use one or two). */
export const MAX_REDIRECTS = 10;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** What to ask for. */
export interface GetOptions {
  /** First byte wanted; above 0 sends `Range: bytes=<offset>-`. */
  offset: number;
  /**
   * The strong ETag or Last-Modified of the bytes already held, sent as `If-Range` so that a
   * changed file comes back whole (200) instead of as a range of the new file.
   */
  validator?: string;
  /** Milliseconds any wait may last: connecting, the answer, the next chunk. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** An answer whose body is being received; {@link OpenResponse.close} must be called when done. */
export interface OpenResponse {
  /** The answer (status, headers, body stream). */
  readonly response: IncomingMessage;
  /** The URL that answered, after redirects. */
  readonly url: URL;
  /** Stops listening for the timeout and the signal, and frees the connection. */
  close(): void;
}

/** GETs `url`, following up to {@link MAX_REDIRECTS} redirects; resolves once a non-redirect answer's headers arrive. */
export async function get(url: URL, options: GetOptions): Promise<OpenResponse> {
  let current = url;
  for (let redirects = 0; ; redirects++) {
    const opened = await send(current, options);
    const status = opened.response.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status)) return opened;
    opened.close();
    if (redirects === MAX_REDIRECTS) {
      throw new DownloadError(`${url.href} redirected more than ${MAX_REDIRECTS} times (last to ${current.href})`, { url: url.href, status });
    }
    current = redirectTarget(current, status, opened.response.headers.location);
  }
}

function redirectTarget(from: URL, status: number, location: string | undefined): URL {
  if (!location) throw new DownloadError(`${from.href} answered HTTP ${status} (a redirect) without a Location`, { url: from.href, status });
  const target = new URL(location, from);
  // A download that started encrypted must not silently continue in clear.
  if (from.protocol === "https:" && target.protocol !== "https:") {
    throw new DownloadError(`${from.href} redirected to ${target.href}, which is not https: refused`, { url: from.href, status });
  }
  return target;
}

function requestHeaders(options: GetOptions): Record<string, string> {
  // identity: the SHA-256 is of the file itself, and Range offsets count its bytes.
  const headers: Record<string, string> = { "user-agent": "endosynth", "accept-encoding": "identity" };
  if (options.offset > 0) {
    headers.range = `bytes=${options.offset}-`;
    if (options.validator) headers["if-range"] = options.validator;
  }
  return headers;
}

/** Sends one request; the timeout and the signal then watch the connection until `close()`. */
function send(url: URL, options: GetOptions): Promise<OpenResponse> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new DownloadError(`Cannot download ${url.href}: only http and https URLs are supported`, { url: url.href }));
  }
  if (options.signal?.aborted) return Promise.reject(new AbortError(`The download of ${url.href} was aborted`));
  return new Promise((resolve, reject) => {
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { headers: requestHeaders(options), timeout: options.timeoutMs });
    let response: IncomingMessage | undefined;
    // Destroying the body (once it flows) or the request hands this exact error to whoever reads next.
    const fail = (error: Error) => (response ? response.destroy(error) : request.destroy(error));
    const onTimeout = () =>
      fail(new DownloadTimeoutError(`${url.host} sent nothing for ${options.timeoutMs / 1000} s (${url.href})`, { url: url.href }));
    const onAbort = () => fail(new AbortError(`The download of ${url.href} was aborted`));
    request.on("timeout", onTimeout);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const close = () => {
      request.off("timeout", onTimeout);
      options.signal?.removeEventListener("abort", onAbort);
      destroyQuietly(request, response);
    };
    request.on("error", (error) => {
      close();
      reject(error instanceof AbortError || error instanceof DownloadTimeoutError ? error : connectionError(url, error));
    });
    request.on("response", (answer) => {
      response = answer;
      resolve({ response: answer, url, close });
    });
    request.end();
  });
}

function destroyQuietly(request: ClientRequest, response: IncomingMessage | undefined): void {
  response?.on("error", () => {}).destroy();
  request.on("error", () => {}).destroy();
}

/** A network failure (refused, reset, DNS) as a DownloadError naming the URL and the cause. */
export function connectionError(url: URL, error: Error): DownloadError {
  const code = (error as NodeJS.ErrnoException).code;
  return new DownloadError(`Cannot download ${url.href}: ${code ? `${code} ` : ""}${error.message}`, { url: url.href, cause: error });
}
