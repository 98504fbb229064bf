/**
 * Starting the package's worker threads from dist (.js) and from source under tsx (.ts) alike.
 * @module
 */
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * The URL of the worker module `name` beside `callerUrl` (the caller's `import.meta.url`), with the
 * caller's own extension: `.js` in dist, `.ts` when running from source.
 */
export function siblingModule(name: string, callerUrl: string): URL {
  return new URL(`./${name}${callerUrl.endsWith(".ts") ? ".ts" : ".js"}`, callerUrl);
}

/**
 * Starts a worker running `moduleUrl`, with none of the process's Node options. Under tsx (tests,
 * scripts) the module is TypeScript and needs tsx's loader, which Node 20 does not apply to a
 * worker's entry module: a tiny bootstrap registers it first.
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  // A worker inherits the process's execArgv by default, and some of those flags break it
  // (`--input-type=module`, `--eval`, a loader of the app's): the package's workers run only its
  // own modules and need none of them.
  options = { ...options, execArgv: [] };
  if (!moduleUrl.pathname.endsWith(".ts")) return new Worker(moduleUrl, options);
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(moduleUrl.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}
