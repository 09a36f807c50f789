#!/usr/bin/env node
// `npm run bench [name…]`: runs bench/<name>.ts one after another (all of them by default). Each benchmark
// prints its own figure next to a peer or limit measured in the same run, since absolute times drift.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const wanted = process.argv.slice(2);
const all = readdirSync(new URL("../bench", import.meta.url))
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort();
const run = wanted.length ? wanted : all;
let failed = 0;
for (const name of run) {
  if (!all.includes(name)) {
    console.error(`no benchmark bench/${name}.ts (have: ${all.join(", ")})`);
    failed++;
    continue;
  }
  console.log(`\n== bench/${name}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", `bench/${name}.ts`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
