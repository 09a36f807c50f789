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
import { mkdirpSync } from "../util/index.js";
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
  changeStamp: () => number;
  transactions: SqliteTransactions;
} {
  let db: Database.Database;
  try {
    if (file !== ":memory:") mkdirpSync(path.dirname(file));
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
  const transactions = new SqliteTransactions(kysely, dialect, driver);
  return {
    db: kysely,
    stats: () => driver.stats,
    changeStamp: () => driver.changeStamp(),
    transactions,
  };
}

/** Transactions that join one batch at most; others wait for the next (statements outside wait too). */
const MAX_BATCH = 64;

interface Job {
  fn: (trx: Transaction<object>) => Promise<unknown>;
  /** Resolve at COMMIT with { result, durable } instead of with the result once durable. */
  early: boolean;
  resolve(value: unknown): void;
  reject(e: unknown): void;
}

/**
 * Transactions on the one SQLite connection, batched: transactions that are waiting while one runs join
 * its BEGIN IMMEDIATE … COMMIT, each in a savepoint of its own and in the order they were asked for, so a
 * batch costs one commit (one set of WAL frames for pages they share, one sync) however many it holds.
 * The contract of each transaction is unchanged: it sees everything committed or run before it and
 * nothing after; if its callback throws, its savepoint is rolled back and only it fails; it resolves only
 * once the whole batch's COMMIT is durable. If SQLite itself ends the transaction (an I/O error, a full
 * disk), every transaction of the batch fails with that error, since none of them landed. The callback
 * gets a Kysely Transaction whose queries go to the connection (prepared ones straight to the driver) and
 * which throws, instead of running anything, once its own callback has ended.
 */
export class SqliteTransactions {
  private readonly queue: Job[] = [];
  private draining = false;

  constructor(
    private readonly db: Kysely<object>,
    private readonly dialect: SqliteDialect,
    private readonly driver: FleetSqliteDriver,
  ) {}

  run<T>(fn: (trx: Transaction<object>) => Promise<T>): Promise<T> {
    return this.enqueue<T>(fn, false);
  }

  /** Resolves at COMMIT; `durable` resolves once the commit is synced (see Store.transactionCommitted). */
  runCommitted<T>(
    fn: (trx: Transaction<object>) => Promise<T>,
  ): Promise<{ result: T; durable: Promise<void> }> {
    return this.enqueue<{ result: T; durable: Promise<void> }>(fn, true);
  }

  private enqueue<R>(fn: (trx: Transaction<object>) => Promise<unknown>, early: boolean): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ fn, early, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.batch();
    } finally {
      this.draining = false;
    }
  }

  /** One BEGIN … COMMIT over the transactions queued now and those queued while it runs; never rejects. */
  private async batch(): Promise<void> {
    const driver = this.driver;
    const conn = await driver.acquireConnection();
    const done: Array<{ job: Job; result: unknown }> = [];
    try {
      try {
        await driver.beginTransaction(conn, {});
      } catch (e) {
        this.queue.shift()?.reject(e);
        return;
      }
      for (let n = 0; n < MAX_BATCH && this.queue.length > 0; n++) {
        const job = this.queue.shift()!;
        const outcome = await this.runOne(conn, job);
        if (outcome.ok) {
          done.push({ job, result: outcome.result });
          continue;
        }
        job.reject(outcome.error);
        if (!driver.inTransaction) {
          // SQLite rolled back the whole transaction: nothing of this batch landed.
          for (const d of done.splice(0)) d.job.reject(outcome.error);
          return;
        }
      }
      if (done.length === 0) {
        await driver.rollbackTransaction(conn);
        return;
      }
      let durable: Promise<void>;
      try {
        durable = driver.commitNoWait(conn);
      } catch (e) {
        await driver.rollbackTransaction(conn).catch(() => undefined);
        for (const d of done.splice(0)) d.job.reject(e);
        return;
      }
      const landed = done.splice(0);
      // Whoever takes `durable` early must wait for it; a failed sync also fails the store closed.
      durable.catch(() => undefined);
      let late = 0;
      for (const d of landed) {
        if (d.job.early) d.job.resolve({ result: d.result, durable });
        else late++;
      }
      if (late > 0) {
        durable.then(
          () => {
            for (const d of landed) if (!d.job.early) d.job.resolve(d.result);
          },
          (e: unknown) => {
            for (const d of landed) if (!d.job.early) d.job.reject(e);
          },
        );
      }
    } catch (e) {
      // Nothing above is meant to throw; if it does, no transaction of the batch may hang.
      for (const d of done.splice(0)) d.job.reject(e);
    } finally {
      await driver.releaseConnection(conn);
    }
  }

  /** Runs one transaction's callback in its own savepoint; rolls the savepoint back when it throws. */
  private async runOne(
    conn: DatabaseConnection,
    job: Job,
  ): Promise<{ ok: true; result: unknown } | { ok: false; error: unknown }> {
    const driver = this.driver;
    let open = true;
    try {
      driver.control("savepoint fleetroot_tx");
      const ended = () =>
        Promise.reject(new FleetError("FR_INTERNAL", "a query ran on a transaction that has already ended"));
      const provider: ConnectionProvider = {
        provideConnection<R>(consumer: (connection: DatabaseConnection) => Promise<R>): Promise<R> {
          return open ? consumer(conn) : ended();
        },
      };
      const executor = this.db.getExecutor().withConnectionProvider(provider);
      const trx = new Transaction<object>({
        config: { dialect: this.dialect },
        dialect: this.dialect,
        driver,
        executor,
      });
      registerDirectRunner(trx, (sql, params) => (open ? driver.executeOn(conn, sql, params) : ended()));
      const result = await job.fn(trx);
      open = false;
      driver.control("release fleetroot_tx");
      return { ok: true, result };
    } catch (error) {
      open = false;
      if (driver.inTransaction) {
        try {
          driver.control("rollback to fleetroot_tx");
          driver.control("release fleetroot_tx");
        } catch {
          // The savepoint cannot be undone: give up the whole transaction rather than commit a half.
          await driver.rollbackTransaction(conn).catch(() => undefined);
        }
      }
      return { ok: false, error };
    }
  }
}
