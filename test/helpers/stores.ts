import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe } from "vitest";
import { openStore, type Dialect, type MigrationSet, type Store } from "../../src/store/index.js";

export interface StoreTestContext {
  /** Opens a store on the current database (call again to simulate a restart). Closed in afterAll. */
  open(migrations?: MigrationSet[]): Promise<Store>;
  /** The current database's URL. */
  url(): string;
  readonly dialect: Dialect;
  /** Switches to a brand-new empty database (for tests that need a clean slate); returns its URL. */
  fresh(): Promise<string>;
}

const pgBase = process.env.FLEETROOT_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * Runs the same describe block on SQLite (a temp file) and on PostgreSQL (a fresh database
 * fr_test_<random>, dropped afterwards). PostgreSQL not answering is a failure, never a skip.
 */
export function describeEachStore(name: string, fn: (ctx: StoreTestContext) => void): void {
  for (const dialect of ["sqlite", "postgres"] as const) {
    describe(`${name} [${dialect}]`, () => {
      const backend = dialect === "sqlite" ? new SqliteDatabases() : new PostgresDatabases();
      const stores: Store[] = [];
      let current = "";
      let unavailable: unknown;
      beforeAll(async () => {
        try {
          current = await backend.create();
        } catch (e) {
          // Not thrown here: vitest would mark the block's tests skipped. Each test fails instead.
          unavailable = e;
        }
      });
      beforeEach(() => {
        if (unavailable) throw unavailable;
      });
      afterAll(async () => {
        for (const s of stores.splice(0)) await s.close().catch(() => {});
        await backend.dropAll();
      });
      fn({
        dialect,
        url: () => {
          if (unavailable) throw unavailable;
          return current;
        },
        fresh: async () => (current = await backend.create()),
        open: async (migrations = []) => {
          if (unavailable) throw unavailable;
          if (!current) current = await backend.create();
          const store = await openStore(current, { migrations });
          stores.push(store);
          return store;
        },
      });
    });
  }
}

interface Databases {
  create(): Promise<string>;
  dropAll(): Promise<void>;
}

class SqliteDatabases implements Databases {
  private dir: string | undefined;
  private n = 0;
  create(): Promise<string> {
    this.dir ??= mkdtempSync(path.join(os.tmpdir(), "fr-store-"));
    return Promise.resolve(`sqlite:${path.join(this.dir, `db${++this.n}.sqlite`)}`);
  }
  dropAll(): Promise<void> {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    return Promise.resolve();
  }
}

class PostgresDatabases implements Databases {
  private readonly names: string[] = [];
  async create(): Promise<string> {
    await ensurePostgres();
    const name = `fr_test_${randomBytes(6).toString("hex")}`;
    await adminQuery(`create database ${name}`);
    this.names.push(name);
    const u = new URL(pgBase);
    u.pathname = `/${name}`;
    return u.toString();
  }
  async dropAll(): Promise<void> {
    for (const name of this.names.splice(0)) {
      await adminQuery(`drop database if exists ${name} with (force)`);
    }
  }
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgBase, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function answers(): Promise<boolean> {
  try {
    await adminQuery("select 1");
    return true;
  } catch {
    return false;
  }
}

let started: Promise<void> | undefined;

/** Starts the local cluster once if it is down; fails with a clear message if it stays down. */
function ensurePostgres(): Promise<void> {
  started ??= (async () => {
    if (await answers()) return;
    try {
      execSync("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", {
        stdio: "ignore",
        timeout: 30_000,
      });
    } catch {
      // Reported below if the server still does not answer.
    }
    for (let i = 0; i < 20; i++) {
      if (await answers()) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(
      `PostgreSQL is not answering at ${new URL(pgBase).host} (FLEETROOT_TEST_PG); start it ` +
        "(pg_ctlcluster 15 main start) or run scripts/install-test-deps.sh — the store suite needs it",
    );
  })();
  return started;
}
