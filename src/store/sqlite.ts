import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import {
  type ConnectionProvider,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  SqliteAdapter,
  SqliteDialect,
  Transaction,
} from "kysely";
import { FleetError, fail } from "../errors/index.js";
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
): {
  db: Kysely<object>;
  stats: () => { commits: number; syncs: number };
  transaction: <T>(fn: (trx: Transaction<object>) => Promise<T>) => Promise<T>;
} {
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
  if (!driver) throw new Error("the SQLite dialect made no driver");
  registerDirectRunner(kysely, (sql, params) => driver.executeDirect(sql, params));
  return {
    db: kysely,
    stats: () => driver.stats,
    transaction: (fn) => leanTransaction(kysely, dialect, driver, fn),
  };
}

/**
 * Kysely's transaction() for this driver, without its per-transaction executor chain: the callback gets
 * a Transaction whose queries go to the transaction's connection, prepared queries straight to the
 * driver. Same contract: BEGIN IMMEDIATE, COMMIT (resolving once durable) or ROLLBACK when fn throws,
 * and a Transaction used after it ended throws instead of running anything.
 */
async function leanTransaction<T>(
  db: Kysely<object>,
  dialect: SqliteDialect,
  driver: FleetSqliteDriver,
  fn: (trx: Transaction<object>) => Promise<T>,
): Promise<T> {
  const ended = () =>
    Promise.reject(new FleetError("FR_INTERNAL", "a query ran on a transaction that has already ended"));
  const conn = await driver.acquireConnection();
  let open = false;
  try {
    await driver.beginTransaction(conn, {});
    open = true;
    const provider: ConnectionProvider = {
      provideConnection<R>(consumer: (connection: DatabaseConnection) => Promise<R>): Promise<R> {
        return open ? consumer(conn) : ended();
      },
    };
    const executor = db.getExecutor().withConnectionProvider(provider);
    const trx = new Transaction<object>({ config: { dialect }, dialect, driver, executor });
    registerDirectRunner(trx, (sql, params) => (open ? driver.executeOn(conn, sql, params) : ended()));
    const result = await fn(trx);
    open = false;
    await driver.commitTransaction(conn);
    return result;
  } catch (e) {
    if (open) {
      open = false;
      await driver.rollbackTransaction(conn);
    }
    throw e;
  } finally {
    await driver.releaseConnection(conn);
  }
}
