/**
 * Which weights licences the user has accepted, remembered in `licenses.json` in endosynth's
 * config folder so that `--accept-license` is needed once per licence, not once per download.
 * @internal
 * @module
 */
import { mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { writeFileAtomicSync } from "../io/atomic.js";
import type { ModelSpec } from "../models/registry.js";

type License = ModelSpec["weightsLicense"];

/** One remembered acceptance. */
interface Acceptance {
  url: string;
  acceptedAt: string;
}

/**
 * The config folder: the option when given, else `%APPDATA%\endosynth` on Windows, else
 * `$XDG_CONFIG_HOME/endosynth`, else `~/.config/endosynth`. Not the cache: clearing caches must
 * not forget what the user agreed to, nor make them agree again.
 */
export function configRoot(configDir?: string): string {
  if (configDir) return resolve(configDir);
  if (process.platform === "win32" && process.env.APPDATA) return join(process.env.APPDATA, "endosynth");
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "endosynth");
}

/** Where the acceptances are kept. */
export function licenseRecordPath(configDir?: string): string {
  return join(configRoot(configDir), "licenses.json");
}

/** The remembered acceptances; a missing or unreadable file remembers none (the user is asked again). */
function readAcceptances(path: string): Record<string, Acceptance> {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, Acceptance>) : {};
  } catch {
    return {};
  }
}

/** Whether `license` was accepted, under its id and at its current URL. */
export function isLicenseAccepted(license: License, configDir?: string): boolean {
  return readAcceptances(licenseRecordPath(configDir))[license.id]?.url === license.url;
}

/** Remembers that `license` was accepted now. */
export function recordLicenseAcceptance(license: License, configDir?: string): void {
  const path = licenseRecordPath(configDir);
  const acceptances = readAcceptances(path);
  acceptances[license.id] = { url: license.url, acceptedAt: new Date().toISOString() };
  mkdirSync(configRoot(configDir), { recursive: true });
  writeFileAtomicSync(path, Buffer.from(`${JSON.stringify(acceptances, null, 2)}\n`));
}
