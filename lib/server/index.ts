/**
 * `endosynth/server`: metric depth over HTTP and WebSockets for other processes and browsers, with a
 * live viewer: `serveDepth(model)` is what `endosynth serve` and `endosynth live` run.
 *
 * @example
 * ```ts
 * import { load } from "endosynth";
 * import { serveDepth } from "endosynth/server";
 * const model = await load("dav2");
 * const server = await serveDepth(model, { port: 8731 });
 * console.log(`depth at ${server.url}v1/depth`);
 * // ... later
 * await server.close();
 * await model.dispose();
 * ```
 * @module endosynth/server
 */
export { DepthServer, serveDepth, type ServedModel, type ServeOptions } from "./server.js";
export { DEPTH_FORMATS, type DepthFormat, type DepthRange } from "./depth_formats.js";
export type { LiveFrame, LiveOptions, LiveSource, LiveSummary } from "./live_feed.js";
export type { PartialIntrinsics } from "./points.js";
