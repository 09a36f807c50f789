#!/usr/bin/env node
// `npm test`: installs the Debian test peers, runs the whole suite, and ends with `N passed, N failed`.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const deps = spawnSync("bash", ["scripts/install-test-deps.sh"], { stdio: "inherit" });
if (deps.status !== 0) {
  console.error("scripts/install-test-deps.sh failed; the test peers are missing");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const results = ".test-results.json";
rmSync(results, { force: true });
const args = [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${results}`,
  ...process.argv.slice(2),
];
const run = spawnSync("npx", args, { stdio: "inherit", env: { ...process.env, FLEETROOT_FROM_SOURCE: "1" } });

let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(results, "utf8"));
  passed = r.numPassedTests ?? 0;
  failed = (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
} catch {
  failed = 1;
}
const status = run.status === 0 && failed === 0 && passed > 0 ? 0 : 1;
if (status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(status);
