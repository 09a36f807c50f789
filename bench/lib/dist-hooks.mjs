// Module resolution hooks for `npm run bench`: a module of src/ that scripts/bench.mjs compiled into
// .bench-dist/ (the same build as `npm run build`, in a directory of its own so that a bench run never
// changes what bin/fleetroot.mjs runs) is loaded from there, so the benchmarks measure compiled JavaScript,
// as a deployed server runs it, rather than tsx's on-the-fly transpilation of the sources. Anything without
// a compiled twin (the benchmarks themselves, test helpers left out of the build) still comes from the
// sources through tsx.
import { existsSync } from "node:fs";
import { URL, fileURLToPath } from "node:url";

const root = new URL("../../", import.meta.url).href;
const src = root + "src/";
const dist = root + ".bench-dist/";

/** The .bench-dist/ twin of a src/ module URL, when the build produced one; undefined otherwise. */
export function compiledTwin(url, exists = (u) => existsSync(fileURLToPath(u))) {
  if (!url.startsWith(src) || !url.endsWith(".ts") || url.endsWith(".d.ts")) return undefined;
  const twin = dist + url.slice(src.length, -".ts".length) + ".js";
  return exists(twin) ? twin : undefined;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const twin = compiledTwin(r.url);
  return twin ? { ...r, url: twin, format: "module" } : r;
}
