/**
 * bench/audit: durable audit appends per second against raw SQLite inserts per second, in the same run, on the
 * same filesystem. Both sides are durable before they acknowledge: the audit log writes each group-commit
 * batch with one write + a shared fdatasync (group commit); SQLite runs WAL with synchronous=FULL (the WAL is synced at every commit).
 * SQLite is measured three ways: one insert per commit; transactions as large as the audit log's average
 * batch (raw rows, like for like on batching); and the same batches with each row redacted and HMAC'd first,
 * which is the work any audit store must do, so that figure compares storage alone.
 * Goal: audit >= 50% of the SQLite rate; the ratio to each figure is printed. Run: `npx tsx bench/audit.ts`.
 */
import Database from "better-sqlite3";
import { createSecretKey, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog } from "../src/audit/index.js";
import type { AuditEntry } from "../src/audit/index.js";
import { hmacSha256, redactEntry } from "../src/audit/redact.js";
import { testSigner } from "../src/audit/test-signer.js";
import { systemClock } from "../src/util/clock.js";

const TOTAL = Number(process.env.BENCH_AUDIT_ENTRIES ?? 20_000);
const IN_FLIGHT = Number(process.env.BENCH_AUDIT_CONCURRENCY ?? 64);
/** Each SQLite phase stops after this long, so the whole bench stays well under 30 s on a slow disk. */
const PHASE_LIMIT_MS = 8_000;

/** A request entry as the server writes one: a token, an accessor and a small body, all HMAC'd. */
function entry(i: number): AuditEntry {
  return {
    type: "request",
    request: {
      id: `6a1f0c2e-0000-4000-8000-${String(i).padStart(12, "0")}`,
      operation: "update",
      path: "secret/data/fleet/robot-17",
      remote_address: "10.0.3.17",
      client_token: "hvs.CAESIJ3yFw2c8bXk1nq0Zb1mHk9xC4VbWQ",
      client_token_accessor: "x7Fq2LmN0pR4sT6vW8yZ1aB3",
      policy_path: "secret/data/fleet/robot-17",
      data: { data: { password: "correct horse battery staple", port: 5432, tags: ["db", "primary"] } },
    },
    auth: {
      accessor: "x7Fq2LmN0pR4sT6vW8yZ1aB3",
      policies: ["default", "fleet-robots"],
      display_name: "token-robot-17",
    },
  };
}

async function benchAudit(dir: string): Promise<{ rate: number; batch: number }> {
  const log = await AuditLog.open({ path: join(dir, "audit.log"), signer: testSigner(), clock: systemClock });
  log.setHmacKey(randomBytes(32));
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (next < TOTAL) {
      const i = next++;
      await log.log(entry(i));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const { syncs, lines } = log.stats;
  await log.close();
  return { rate: TOTAL / secs, batch: lines / syncs };
}

function openSqlite(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE audit (seq INTEGER PRIMARY KEY, line TEXT NOT NULL)");
  return db;
}

/**
 * Rows per second inserting `rows` rows, `perTx` rows per committed transaction. `redact` makes each row pay
 * the audit log's per-entry CPU work (HMAC every sensitive string, serialize) before it is inserted.
 */
function benchSqlite(
  file: string,
  rows: number,
  perTx: number,
  redact = false,
): { rate: number; rows: number } {
  const db = openSqlite(file);
  const key = createSecretKey(randomBytes(32));
  const fixed = JSON.stringify({ seq: 1, time: new Date().toISOString(), prev: "0".repeat(64), ...entry(0) });
  const line = (i: number) =>
    redact ? JSON.stringify(redactEntry(entry(i), (v) => hmacSha256(key, v))) : fixed;
  const insert = db.prepare("INSERT INTO audit (seq, line) VALUES (?, ?)");
  const tx = db.transaction((from: number, n: number) => {
    for (let k = 0; k < n; k++) insert.run(from + k, line(from + k));
  });
  const start = process.hrtime.bigint();
  const deadline = Date.now() + PHASE_LIMIT_MS;
  let done = 0;
  while (done < rows && Date.now() < deadline) {
    const n = Math.min(perTx, rows - done);
    if (n === 1) insert.run(done + 1, line(done + 1));
    else tx(done + 1, n);
    done += n;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  db.close();
  return { rate: done / secs, rows: done };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fr-bench-audit-"));
  try {
    const audit = await benchAudit(dir);
    const batch = Math.max(1, Math.round(audit.batch));
    const single = benchSqlite(join(dir, "single.db"), TOTAL, 1);
    const batched = benchSqlite(join(dir, "batched.db"), TOTAL, batch);
    const redacted = benchSqlite(join(dir, "redacted.db"), TOTAL, batch, true);
    const goal = (base: number) => (audit.rate >= 0.5 * base ? "goal >= 50% met" : "goal >= 50% NOT met");
    console.log(`bench/audit  (${TOTAL} entries, ${IN_FLIGHT} in flight, files in ${dir})`);
    console.log(
      `  audit log, durable (group commit, fdatasync):      ${fmt(audit.rate)} entries/s, avg ${audit.batch.toFixed(1)} lines per sync`,
    );
    console.log(
      `  SQLite WAL sync=FULL, 1 insert/commit:             ${fmt(single.rate)} rows/s (${single.rows} rows)`,
    );
    console.log(
      `  SQLite WAL sync=FULL, ${batch} inserts/commit:         ${fmt(batched.rate)} rows/s (${batched.rows} rows)`,
    );
    console.log(
      `  SQLite, ${batch}/commit, rows redacted + HMAC'd first:  ${fmt(redacted.rate)} rows/s (${redacted.rows} rows)`,
    );
    console.log(
      `  audit / SQLite 1 insert per commit:      ${pct(audit.rate, single.rate)}  (${goal(single.rate)})`,
    );
    console.log(
      `  audit / SQLite same-size batches (raw):  ${pct(audit.rate, batched.rate)}  (${goal(batched.rate)})`,
    );
    console.log(
      `  audit / SQLite same-size batches + HMAC: ${pct(audit.rate, redacted.rate)}  (${goal(redacted.rate)})`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
