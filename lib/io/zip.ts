/**
 * The zip reader and writer under the one name `lib/index.ts` imports them by; the code lives in
 * `zip_reader.ts` and `zip_writer.ts`; the rest of the package imports those directly.
 * @module
 */
export { openZip, openZipFile, type ReadZipEntryOptions, readZipEntry, readZipEntryHead, ZipArchive, type ZipEntry } from "./zip_reader.js";
export { type ZipAddOptions, ZipWriter } from "./zip_writer.js";
