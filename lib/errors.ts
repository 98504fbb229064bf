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
