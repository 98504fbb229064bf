/**
 * `Symbol.asyncDispose` and `AsyncDisposable` for consumers whose TypeScript settings lack them
 * (a lib older than `esnext.disposable`, no @types/node): models and video writers implement them
 * so that `await using` frees them, and their declarations must compile everywhere. These are the
 * same declarations TypeScript's lib and @types/node make, so they merge with either.
 * @module
 */
declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
  }
  interface AsyncDisposable {
    /** Frees the resource: what leaving an `await using` scope calls. */
    [Symbol.asyncDispose](): PromiseLike<void>;
  }
}

/**
 * What `await using` frees. Classes implement this alias rather than the global name so that their
 * declaration files import this module, and with it the declarations above.
 */
export type AsyncDisposableResource = AsyncDisposable;
