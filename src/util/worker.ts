import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread on the module next to `base` named `name` (without extension): the compiled
 * `.js` file, or — when running from TypeScript source (tests, `FLEETROOT_FROM_SOURCE`) — the `.ts`
 * file loaded through tsx, which a worker does not inherit from the main thread.
 */
export function startModuleWorker(base: string, name: string, workerData?: unknown): Worker {
  if (!base.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, base), { workerData });
  // The ESM build of tsx's API (require.resolve finds its CommonJS twin next to it).
  const tsx = pathToFileURL(
    createRequire(base)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs"),
  ).href;
  const entry = new URL(`./${name}.ts`, base).href;
  const code =
    `import(${JSON.stringify(tsx)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData });
}
