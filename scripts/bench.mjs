#!/usr/bin/env node
// `npm run bench [name…]`: runs bench/<name>.ts one after another (all of them by default). Each benchmark
// prints its own figure next to a peer or limit measured in the same run, since absolute times drift.
//
// The code measured is the compiled server, as a deployed one runs it: built here first into .bench-dist/
// (`npm run build`'s configuration, its own directory so that dist/ and thus bin/fleetroot.mjs are left
// alone); FLEETROOT_FROM_SOURCE=1 measures the TypeScript sources through tsx instead
// (bench/lib/dist-hooks.mjs does the swap).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const wanted = process.argv.slice(2);
const all = readdirSync(new URL("../bench", import.meta.url))
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort();
const run = wanted.length ? wanted : all;
const unknown = run.filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`no benchmark ${unknown.map((n) => `bench/${n}.ts`).join(", ")} (have: ${all.join(", ")})`);
  process.exit(2);
}

const env = { ...process.env };
const loader = ["--import", "tsx"];
if (process.env.FLEETROOT_FROM_SOURCE) {
  console.log("measuring the TypeScript sources through tsx (FLEETROOT_FROM_SOURCE is set)");
} else {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const root = fileURLToPath(new URL("..", import.meta.url));
  console.log("compiling the server into .bench-dist/ to measure the compiled build…");
  const b = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", ".bench-dist"], {
    cwd: root,
    stdio: "inherit",
  });
  if (b.status !== 0) {
    console.error("the build failed; fix it, or set FLEETROOT_FROM_SOURCE=1 to measure the sources");
    process.exit(1);
  }
  env.FLEETROOT_BENCH_CODE = "dist";
  loader.push("--import", fileURLToPath(new URL("../bench/lib/use-dist.mjs", import.meta.url)));
}

let failed = 0;
for (const name of run) {
  console.log(`\n== bench/${name}`);
  const r = spawnSync(process.execPath, [...loader, `bench/${name}.ts`], { stdio: "inherit", env });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
