import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteAdapter, SqliteDialect, type DialectAdapter, type Driver } from "kysely";
import { fail } from "../errors/index.js";
import { registerDirectRunner } from "./prepared.js";
import { FleetSqliteDriver } from "./sqlite-driver.js";

/**
 * SQLite does run DDL inside transactions; Kysely's adapter says it does not, which would make its
 * Migrator run migrations outside any transaction and leave a failed one half-applied.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class FleetSqliteDialect extends SqliteDialect {
  driver: FleetSqliteDriver | undefined;
  constructor(private readonly database: Database.Database) {
    super({ database });
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
  override createDriver(): Driver {
    this.driver = new FleetSqliteDriver(this.database);
    return this.driver;
  }
}

/**
 * Opens a SQLite database: WAL, foreign keys on. synchronous=NORMAL with the driver's group commit (every
 * commit waits for an fdatasync of the WAL before it resolves) gives synchronous=FULL's durability without
 * syncing on the event loop.
 */
export function openSqlite(
  file: string,
  busyTimeoutMs: number,
): { db: Kysely<object>; stats: () => { commits: number; syncs: number } } {
  let db: Database.Database;
  try {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    db = new Database(file);
  } catch (e) {
    fail("FR_STORE_UNAVAILABLE", `cannot open SQLite database ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
  } catch (e) {
    db.close();
    fail("FR_STORE_UNAVAILABLE", `cannot use SQLite database ${file}: ${(e as Error).message}`, { cause: e });
  }
  const dialect = new FleetSqliteDialect(db);
  const kysely = new Kysely<object>({ dialect });
  const driver = dialect.driver;
  if (driver) registerDirectRunner(kysely, (sql, params) => driver.executeDirect(sql, params));
  return {
    db: kysely,
    stats: () => dialect.driver?.stats ?? { commits: 0, syncs: 0 },
  };
}
