/**
 * bench/updates: publish a repository of BENCH_UPDATES_TARGETS (default 100,000) targets in 256 hash bins,
 * then add one target and republish. Printed next to the floor — hashing the same bytes — and the goal:
 * the republish touches only the changed bin, snapshot and timestamp, in under 1 s.
 * Run: `npm run bench updates`.
 */
import crypto from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKeyManager, requestKeyPolicy } from "../src/keys/index.js";
import { openStore } from "../src/store/index.js";
import { UpdatesRepository, updatesMigrations } from "../src/updates/index.js";
import { systemClock } from "../src/util/clock.js";

const N = Number(process.env.BENCH_UPDATES_TARGETS ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "fr-bench-updates-"));
const store = await openStore(`sqlite:${join(dir, "s.sqlite")}`, { migrations: [updatesMigrations] });
const keys = createKeyManager();
const requestKeys = requestKeyPolicy({ fileDirs: [dir], pkcs11Modules: [] });
const repos = new UpdatesRepository({ store, keys, clock: systemClock, requestKeyPolicy: requestKeys });
const k = (n: string) => [{ uri: `file:${join(dir, `${n}.pem`)}`, generate: "ed25519" as const }];
try {
  await repos.init("b", { keys: { root: k("root"), targets: k("t"), snapshot: k("s"), timestamp: k("ts") } });
  await repos.delegateHashBins("b", { bitLength: 8, keys: k("bins") });
  const items = Array.from({ length: N }, (_, i) => ({
    path: `pkg/${i}.bin`,
    content: Buffer.from(`content of package ${i}`),
  }));

  let t = performance.now();
  for (const it of items) crypto.createHash("sha256").update(it.content).digest();
  const floor = performance.now() - t;

  t = performance.now();
  for (let i = 0; i < items.length; i += 10_000) await repos.addTargets("b", items.slice(i, i + 10_000));
  const first = await repos.publish("b");
  const full = performance.now() - t;

  t = performance.now();
  await repos.addTargets("b", [{ path: "pkg/new.bin", content: Buffer.from("one more") }]);
  const again = await repos.publish("b");
  const one = performance.now() - t;

  console.log(`targets: ${N} in 256 bins`);
  console.log(`hash the same bytes (floor): ${floor.toFixed(0)} ms`);
  console.log(
    `add + publish all:           ${full.toFixed(0)} ms (${first.published.length} metadata files signed)`,
  );
  console.log(
    `add one + republish:         ${one.toFixed(0)} ms, signed ${again.published.map((p) => p.role).join(", ")} ` +
      `(goal < 1000 ms, only the changed bin + snapshot + timestamp: ${again.published.length === 3 ? "yes" : "NO"})`,
  );
} finally {
  await keys.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
