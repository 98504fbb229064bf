/**
 * The public surface of each entry point of package.json's `exports`, read with the TypeScript
 * compiler from the sources: every exported name, and whether it exists at run time (a value) or
 * only in the types.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { repoRoot } from "./fixtures.js";

/** Public names of one entry point, sorted. */
export interface Surface {
  values: string[];
  types: string[];
}

/** The source module behind each subpath: `./dist/io/index.js` is `lib/io/index.ts`. */
export function entryPoints(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { exports: Record<string, string | { default: string }> };
  const entries: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === "string") continue;
    entries[subpath] = join(repoRoot, target.default.replace(/^\.\/dist\//, "lib/").replace(/\.js$/, ".ts"));
  }
  return entries;
}

/** Every entry point's surface, from one program over all of them. */
export function publicSurfaces(): Record<string, Surface> {
  const entries = entryPoints();
  const program = ts.createProgram(Object.values(entries), {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const surfaces: Record<string, Surface> = {};
  for (const [subpath, file] of Object.entries(entries)) {
    const source = program.getSourceFile(file);
    const symbol = source && checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`${file} is not a module`);
    const values: string[] = [];
    const types: string[] = [];
    for (const exported of checker.getExportsOfModule(symbol)) {
      const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const isTypeOnlyExport = exported.declarations?.some((declaration) => ts.isExportSpecifier(declaration) && (declaration.isTypeOnly || declaration.parent.parent.isTypeOnly));
      (target.flags & ts.SymbolFlags.Value && !isTypeOnlyExport ? values : types).push(exported.name);
    }
    surfaces[subpath] = { values: values.sort(), types: types.sort() };
  }
  return surfaces;
}
