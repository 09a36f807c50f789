#!/usr/bin/env node
// `npm test`: installs the Debian test peers, runs the whole suite, and ends with `N passed, N failed`.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
// Every temporary file of the run (test data directories, HSM tokens, peers' scratch files) goes under one
// directory of its own, removed when the run ends, passed or failed: nothing piles up in /tmp run after run,
// and two runs on one machine never share a directory.
const scratch = mkdtempSync(join(tmpdir(), "frt-"));
// Searchable by others, as /tmp is (not listable or writable): peers that drop privileges, such as
// mosquitto started as root, must still reach the files a test made readable for them.
chmodSync(scratch, 0o711);
let run;
try {
  run = spawnSync("npx", args, {
    stdio: "inherit",
    env: { ...process.env, FLEETROOT_FROM_SOURCE: "1", TMPDIR: scratch },
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

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
