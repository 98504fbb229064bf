/**
 * Errors crossing a worker boundary. `postMessage` keeps an Error's message but not its class,
 * code, file or key, and callers match on those: the worker sends them as plain data and the
 * main thread rebuilds the same error class, so a conversion in a worker fails exactly as it would
 * in the caller's thread.
 * @module
 */
import {
  AbortError,
  BackendUnavailableError,
  CheckpointError,
  EndosynthError,
  FileFormatError,
  InputError,
  RuntimeFailureError,
  type ErrorContext,
} from "../errors.js";

/** An error as plain data. */
export interface TransferredError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  key?: string;
}

type ContextualErrorClass = new (message: string, context?: ErrorContext) => EndosynthError;

const REBUILDABLE: Readonly<Record<string, ContextualErrorClass>> = {
  AbortError,
  BackendUnavailableError,
  CheckpointError,
  FileFormatError,
  InputError,
  RuntimeFailureError,
};

/** `error` as plain data that survives `postMessage`. */
export function transferableError(error: unknown): TransferredError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const transferred: TransferredError = { name: error.name, message: error.message };
  if (error instanceof EndosynthError) {
    transferred.code = error.code;
    if (error.file !== undefined) transferred.file = error.file;
    if (error.key !== undefined) transferred.key = error.key;
  }
  return transferred;
}

/**
 * The error `transferred` describes, as an instance of its own class when it is one of the
 * package's; any other error becomes a plain Error keeping the original name. Its stack is that of
 * `callSite`, an Error made where the caller started the work, so it points at the caller's code
 * rather than at the message handler that received the reply.
 */
export function rebuiltError(transferred: TransferredError, callSite?: Error): Error {
  const error = instantiate(transferred);
  const frames = callSite?.stack?.split("\n").slice(1);
  if (frames) error.stack = [`${error.name}: ${error.message}`, ...frames].join("\n");
  return error;
}

function instantiate(transferred: TransferredError): Error {
  const ErrorClass = REBUILDABLE[transferred.name];
  if (ErrorClass) {
    const context: ErrorContext = {};
    if (transferred.file !== undefined) context.file = transferred.file;
    if (transferred.key !== undefined) context.key = transferred.key;
    return new ErrorClass(transferred.message, context);
  }
  const error = new Error(transferred.message);
  error.name = transferred.name;
  return error;
}
