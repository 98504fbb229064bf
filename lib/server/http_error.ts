/**
 * What the server answers when it cannot give depth: an HTTP status and a JSON body naming what was
 * wrong, `{ "error": { "status", "code", "message", "key"? } }`. Library errors keep their own code
 * (an `InputError` is `ERR_ENDOSYNTH_INPUT`, 400); the refusals only a server makes (too large,
 * busy, too slow, not allowed) have codes of their own, listed in {@link HTTP_ERROR_CODES}.
 * @module
 */
import { EndosynthError, FileFormatError, InputError } from "../errors.js";

/** The stable code of each refusal only the server makes, by HTTP status. */
export const HTTP_ERROR_CODES = {
  401: "ERR_ENDOSYNTH_UNAUTHORIZED",
  403: "ERR_ENDOSYNTH_FORBIDDEN",
  404: "ERR_ENDOSYNTH_NOT_FOUND",
  405: "ERR_ENDOSYNTH_METHOD_NOT_ALLOWED",
  406: "ERR_ENDOSYNTH_NOT_ACCEPTABLE",
  408: "ERR_ENDOSYNTH_REQUEST_TIMEOUT",
  413: "ERR_ENDOSYNTH_BODY_TOO_LARGE",
  415: "ERR_ENDOSYNTH_MEDIA_TYPE",
  503: "ERR_ENDOSYNTH_BUSY",
  504: "ERR_ENDOSYNTH_TIMEOUT",
} as const;

/** An HTTP status the server answers with. */
export type HttpErrorStatus = keyof typeof HTTP_ERROR_CODES;

/** A request the server refuses, with the status and headers (Retry-After, Allow, ...) to answer with. */
export class HttpError extends EndosynthError {
  /** The HTTP status. */
  readonly status: HttpErrorStatus;
  /** Extra response headers, e.g. `{ "Retry-After": "2" }`. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: HttpErrorStatus, message: string, options: { key?: string; headers?: Record<string, string> } = {}) {
    super(HTTP_ERROR_CODES[status], message, options.key === undefined ? {} : { key: options.key });
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { status: number; code: string; message: string; key?: string };
}

/** The status, headers and JSON body that answer `error`. */
export function errorResponse(error: unknown): { status: number; headers: Readonly<Record<string, string>>; body: ErrorBody } {
  const status = statusOf(error);
  const code = error instanceof EndosynthError ? error.code : "ERR_ENDOSYNTH_INTERNAL";
  const message = error instanceof Error ? error.message : String(error);
  const key = error instanceof EndosynthError ? error.key : undefined;
  const headers = error instanceof HttpError ? error.headers : {};
  return { status, headers, body: { error: { status, code, message, ...(key === undefined ? {} : { key }) } } };
}

/** Bad input the caller can fix is a 400; a runtime that failed, or a bug, is a 500. */
function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof InputError || error instanceof FileFormatError) return 400;
  return 500;
}
