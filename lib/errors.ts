/**
 * The package's one error hierarchy. Every error it throws on purpose is an {@link EndosynthError}
 * with a stable {@link EndosynthError.code} (match on the code or the class, never on the message)
 * and a message that names what was wrong: the file, the key, what was expected and what was found.
 *
 * @example
 * ```ts
 * import { readNpz, FileFormatError } from "endosynth";
 * try {
 *   readNpz("broken.npz");
 * } catch (err) {
 *   if (err instanceof FileFormatError) console.error(err.code, err.file, err.message);
 * }
 * ```
 * @module
 */

/** Where an error happened, when it concerns a file or one entry of it. */
export interface ErrorContext {
  /** The file that was being read or written. */
  file?: string;
  /** The entry inside it: an .npz member, a state-dict key, an option name. */
  key?: string;
  /** The error that caused this one, if any. */
  cause?: unknown;
}

/** Base class of every error this package throws on purpose. */
export class EndosynthError extends Error {
  /** Stable machine-readable code, e.g. `"ERR_ENDOSYNTH_INPUT"`. */
  readonly code: string;
  /** The file concerned, if any. */
  readonly file?: string;
  /** The entry (archive member, tensor key, option) concerned, if any. */
  readonly key?: string;

  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.code = code;
    if (context.file !== undefined) this.file = context.file;
    if (context.key !== undefined) this.key = context.key;
  }
}

/** An argument of a call is of the wrong type, shape, dtype or range. Nothing was done. */
export class InputError extends EndosynthError {
  constructor(message: string, context?: ErrorContext) {
    super("ERR_ENDOSYNTH_INPUT", message, context);
  }
}

/** A file cannot be read, is truncated or corrupt, or is not in the format it claims (npy, npz, zip, image, ONNX). */
export class FileFormatError extends EndosynthError {
  constructor(message: string, context?: ErrorContext) {
    super("ERR_ENDOSYNTH_FILE_FORMAT", message, context);
  }
}

/**
 * A checkpoint cannot be used: missing, legacy format, forbidden pickle global, wrong architecture,
 * missing or unexpected keys, wrong shapes.
 */
export class CheckpointError extends EndosynthError {
  constructor(message: string, context?: ErrorContext) {
    super("ERR_ENDOSYNTH_CHECKPOINT", message, context);
  }
}

/** A requested backend (TensorRT, ONNX Runtime) cannot run here; the message says why. */
export class BackendUnavailableError extends EndosynthError {
  constructor(message: string, context?: ErrorContext) {
    super("ERR_ENDOSYNTH_BACKEND_UNAVAILABLE", message, context);
  }
}

/** A runtime (ONNX Runtime, CUDA, TensorRT) failed while running a model. */
export class RuntimeFailureError extends EndosynthError {
  constructor(message: string, context?: ErrorContext) {
    super("ERR_ENDOSYNTH_RUNTIME", message, context);
  }
}

/** A model, stream or buffer was used after `dispose()`. */
export class DisposedError extends EndosynthError {
  constructor(what: string) {
    super("ERR_ENDOSYNTH_DISPOSED", `${what} has been disposed and cannot be used any more`);
  }
}

/** A long operation was cancelled through its `AbortSignal`. */
export class AbortError extends EndosynthError {
  constructor(message = "The operation was aborted", context?: ErrorContext) {
    super("ERR_ENDOSYNTH_ABORTED", message, context);
  }
}

/** Where a download error happened: the URL and, when the server answered, the HTTP status. */
export interface DownloadErrorContext extends ErrorContext {
  /** The URL being fetched. */
  url: string;
  /** The HTTP status the server answered with, if it answered. */
  status?: number;
}

/**
 * A download failed: the server answered with an error status (404, 500...), refused or cut the
 * connection, or redirected too often. What was received of the file is kept to resume from.
 */
export class DownloadError extends EndosynthError {
  /** The URL being fetched. */
  readonly url: string;
  /** The HTTP status the server answered with, if it answered. */
  readonly status?: number;

  constructor(message: string, context: DownloadErrorContext) {
    super("ERR_ENDOSYNTH_DOWNLOAD", message, context);
    this.url = context.url;
    if (context.status !== undefined) this.status = context.status;
  }
}

/** A server did not accept the connection, answer, or send more data within the timeout. */
export class DownloadTimeoutError extends EndosynthError {
  /** The URL being fetched. */
  readonly url: string;

  constructor(message: string, context: DownloadErrorContext) {
    super("ERR_ENDOSYNTH_DOWNLOAD_TIMEOUT", message, context);
    this.url = context.url;
  }
}

/** A file's SHA-256 is not the one published or recorded for it. The file was not kept in place. */
export class ChecksumError extends EndosynthError {
  /** The SHA-256 the file should have, in hex. */
  readonly expected: string;
  /** The SHA-256 it has, in hex. */
  readonly actual: string;

  constructor(message: string, context: ErrorContext & { expected: string; actual: string }) {
    super("ERR_ENDOSYNTH_CHECKSUM", message, context);
    this.expected = context.expected;
    this.actual = context.actual;
  }
}

/** Weights were requested whose licence has not been accepted (`acceptLicense`). Nothing was downloaded. */
export class LicenseNotAcceptedError extends EndosynthError {
  /** Where the licence's text is published. */
  readonly licenseUrl: string;

  constructor(message: string, context: ErrorContext & { licenseUrl: string }) {
    super("ERR_ENDOSYNTH_LICENSE_NOT_ACCEPTED", message, context);
    this.licenseUrl = context.licenseUrl;
  }
}
