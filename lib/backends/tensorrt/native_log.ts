/**
 * Mirrors the addon's log (what TensorRT's ILogger reported, and the addon's own notes such as a
 * CUDA graph capture falling back) to `util.debuglog("endosynth")`: run with
 * `NODE_DEBUG=endosynth` to see it. Library code never prints; this is the package's debug channel.
 * @module
 */
import { debuglog } from "node:util";
import type { NativeAddon, NativeLogEntry } from "./addon.js";

const debug = debuglog("endosynth");
let mirroredUpTo = 0;

/** Sends the entries logged since the last call to the debug log (cheap when it is disabled). */
export function mirrorNativeLog(addon: NativeAddon): void {
  if (!debug.enabled) return;
  const { entries } = addon.logMessages(mirroredUpTo);
  for (const entry of entries) {
    debug("%s %s: %s", entry.source, entry.severity, entry.message);
    mirroredUpTo = entry.seq;
  }
}

/** Everything the addon's bounded log still holds (the last few hundred entries), for debugging. */
export function nativeLogEntries(addon: NativeAddon): NativeLogEntry[] {
  return addon.logMessages(0).entries;
}
