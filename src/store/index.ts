import type { Kysely, Transaction } from "kysely";
import { runMigrations } from "./migrate.js";
import { openPostgres } from "./postgres.js";
import { openSqlite, type SqliteTransactions } from "./sqlite.js";
import type { Dialect, MigrationSet, Store } from "./types.js";
import { parseStoreUrl } from "./url.js";

export type { Dialect, MigrationSet, Store } from "./types.js";
export { bigintType, blobType, dialectOf } from "./columns.js";
export { isUniqueViolation } from "./errors.js";
export { parseStoreUrl, type StoreLocation } from "./url.js";

export interface OpenStoreOptions {
  /** Every module's migrations; they run in global name order. */
  migrations: readonly MigrationSet[];
  /** How long to wait for PostgreSQL to answer (and SQLite's busy timeout). Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * false: leave the schema as it is (a tool reading a running server's store, which may be of another
   * version); default true.
   */
  migrate?: boolean;
}

/** Opens `sqlite:PATH` or `postgres://…`, checks it answers, and applies pending migrations. */
export async function openStore(url: string, opts: OpenStoreOptions): Promise<Store> {
  const loc = parseStoreUrl(url);
  const timeout = opts.connectTimeoutMs ?? 5000;
  const sqlite = loc.dialect === "sqlite" ? openSqlite(loc.file, timeout) : undefined;
  const db = loc.dialect === "sqlite" ? sqlite!.db : await openPostgres(loc.url, loc, timeout);
  try {
    if (opts.migrate !== false) await runMigrations(db, opts.migrations);
  } catch (e) {
    await db.destroy().catch(() => {});
    throw e;
  }
  return new SqlStore(loc.dialect, db, sqlite?.stats, sqlite?.transactions, sqlite?.changeStamp);
}

class SqlStore implements Store {
  private closed = false;
  constructor(
    readonly dialect: Dialect,
    readonly db: Kysely<object>,
    readonly stats?: () => { commits: number; syncs: number },
    private readonly lean?: SqliteTransactions,
    readonly changeStamp?: () => number,
  ) {}

  transaction<T>(fn: (trx: Transaction<object>) => Promise<T>): Promise<T> {
    return this.lean ? this.lean.run(fn) : this.db.transaction().execute(fn);
  }

  async transactionCommitted<T>(
    fn: (trx: Transaction<object>) => Promise<T>,
  ): Promise<{ result: T; durable: Promise<void> }> {
    if (this.lean) return this.lean.runCommitted(fn);
    return { result: await this.db.transaction().execute(fn), durable: Promise.resolve() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
  }
}
