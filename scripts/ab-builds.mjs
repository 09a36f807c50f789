#!/usr/bin/env node
// Compares the CPU per request of two or more builds of the server under the same load at the same time:
//
//   node scripts/ab-builds.mjs [--rounds 10] [--seconds 4] [--rate 10000] [--connections 32] NAME=ROOT[:KIND] …
//
// Each ROOT is a checkout with node_modules and a compiled .bench-dist/ (`npx tsc -p tsconfig.build.json
// --outDir .bench-dist` in it); KIND is what bench/auth.ts serves: fleetroot (default) or bare. Every
// server gets the same fixed request rate in the same seconds, so the machine's drift (which moves a
// saturated run's figures by ±3 µs per request from one round to the next here) touches all of them
// alike; each round reads every server's CPU (process.cpuUsage over IPC) and its event loop's busy time
// (what bounds a saturated server's throughput when work runs on other threads), and the verdict is the
// median of the per-round differences against the first build. An A/A run (the same ROOT twice) shows the noise
// left: ±0.7 µs per request here. The rate must be one the machine can serve for all of them at once; a
// round whose servers fall behind it is reported.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "10" },
    seconds: { type: "string", default: "4" },
    rate: { type: "string", default: "10000" },
    connections: { type: "string", default: "32" },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const connections = Number(values.connections);
if (
  positionals.length < 2 ||
  ![rounds, seconds, rate, connections].every((n) => Number.isInteger(n) && n > 0)
) {
  console.error(
    "usage: node scripts/ab-builds.mjs [--rounds N] [--seconds S] [--rate R] [--connections C] NAME=ROOT[:KIND] NAME=ROOT[:KIND] …",
  );
  process.exit(2);
}

const servers = [];
process.on("exit", () => servers.forEach((s) => s.child.kill()));
for (const spec of positionals) {
  const eq = spec.indexOf("=");
  if (eq <= 0) {
    console.error(`not NAME=ROOT[:KIND]: ${spec}`);
    process.exit(2);
  }
  const [root, kind = "fleetroot"] = spec.slice(eq + 1).split(":");
  const dir = resolve(root);
  if (kind !== "fleetroot" && kind !== "bare") {
    console.error(`${spec}: KIND must be fleetroot or bare, not ${kind}`);
    process.exit(2);
  }
  if (!existsSync(`${dir}/bench/auth.ts`) || !existsSync(`${dir}/.bench-dist`)) {
    console.error(
      `${spec}: ${dir} needs bench/auth.ts and a compiled .bench-dist/ ` +
        "(in it: npx tsc -p tsconfig.build.json --outDir .bench-dist)",
    );
    process.exit(2);
  }
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--import", `${dir}/bench/lib/use-dist.mjs`, `${dir}/bench/auth.ts`, "serve", kind],
    {
      cwd: dir,
      env: { ...process.env, FLEETROOT_BENCH_CODE: "dist" },
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    },
  );
  const info = await new Promise((ok, fail) => {
    child.on("error", (e) => fail(new Error(`${spec}: cannot start the server (${e.message})`)));
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{") && l.endsWith("}"));
      if (line) ok(JSON.parse(line));
    });
    child.on("exit", (code) => fail(new Error(`${spec}: the server exited with ${code}`)));
  }).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
  servers.push({ name: spec.slice(0, eq), child, ...info, rounds: [], loopRounds: [] });
}

const statsOf = (child) =>
  new Promise((ok) => {
    child.once("message", (m) => ok(m));
    child.send({});
  });
const load = (s, duration) =>
  autocannon({
    url: s.url,
    connections,
    duration,
    overallRate: rate,
    headers: s.token ? { "x-vault-token": s.token } : {},
  });
const median = (a) => {
  const b = [...a].sort((x, y) => x - y);
  const m = b.length >> 1;
  return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2;
};

await Promise.all(servers.map((s) => load(s, 2)));
for (let r = 1; r <= rounds; r++) {
  const before = await Promise.all(servers.map((s) => statsOf(s.child)));
  const results = await Promise.all(servers.map((s) => load(s, seconds)));
  const after = await Promise.all(servers.map((s) => statsOf(s.child)));
  const line = servers.map((s, i) => {
    const res = results[i];
    const us = (after[i].cpuUs - before[i].cpuUs) / res.requests.total;
    const loopUs = ((after[i].loopActiveMs - before[i].loopActiveMs) * 1000) / res.requests.total;
    s.rounds.push(us);
    s.loopRounds.push(loopUs);
    const behind = res.requests.average < rate * 0.97 ? " (behind the rate)" : "";
    const bad = res.non2xx + res.errors > 0 ? ` (${res.non2xx + res.errors} failed)` : "";
    return `${s.name} ${us.toFixed(2)} µs (loop ${loopUs.toFixed(2)})${behind}${bad}`;
  });
  console.log(`round ${r}: ${line.join("  ")}`);
}
for (const s of servers)
  console.log(
    `${s.name}: median ${median(s.rounds).toFixed(2)} µs of server CPU per request, ` +
      `${median(s.loopRounds).toFixed(2)} µs of event-loop time (busy, blocking calls included)`,
  );
const [first, ...rest] = servers;
for (const s of rest) {
  for (const [what, key] of [
    ["server CPU", "rounds"],
    ["event-loop time", "loopRounds"],
  ]) {
    const diffs = s[key].map((us, i) => us - first[key][i]);
    const lower = diffs.filter((d) => d < 0).length;
    console.log(
      `${s.name} − ${first.name}, ${what}: median of the paired differences ${median(diffs).toFixed(2)} µs ` +
        `per request (lower in ${lower} of ${diffs.length} rounds)`,
    );
  }
}
process.exit(0);
