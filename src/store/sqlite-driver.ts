import { closeSync, fdatasync, openSync } from "node:fs";
import type Database from "better-sqlite3";
import type { CompiledQuery } from "kysely";
import {
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import { GroupSync, SYNC_GAP_MS } from "../util/group-sync.js";
import { LoopLoad } from "../util/loop-load.js";

/**
 * Kysely driver for better-sqlite3, built for many concurrent requests on one connection:
 * - Only a transaction holds the connection, from BEGIN to COMMIT/ROLLBACK; waiters are queued FIFO. A
 *   statement outside a transaction runs at once unless a transaction is open, in which case it waits.
 * - Group commit: the database runs synchronous=NORMAL, so COMMIT does not sync the WAL on the event loop;
 *   instead, a committed transaction (or a write outside one) waits for an fdatasync of the WAL on the
 *   thread pool, shared by every commit made before it started, and only then resolves. Durability is that
 *   of synchronous=FULL (NORMAL still syncs the WAL before and the database after each checkpoint); the
 *   connection is free for the next transaction while the sync runs.
 * - Prepared statements are cached by SQL text.
 * - A change stamp (changeStamp) tells caches whether anything in the database may have changed.
 */
export class FleetSqliteDriver implements Driver {
  /** Who holds the connection: a transaction's connection, or a statement waiting its turn. */
  private owner: object | undefined;
  private readonly waiters: Array<() => void> = [];
  private readonly free: FleetSqliteConnection[] = [];
  private readonly statements = new Map<string, Database.Statement>();
  private readonly wal: { sync: GroupSync; close(): void } | undefined;
  private readonly sync: GroupSync | undefined;

  constructor(private readonly db: Database.Database) {
    // Group commit needs the WAL file; a database that is not in WAL mode (a filesystem without shared
    // memory, say) syncs at every commit instead.
    const wal = !db.memory && db.pragma("journal_mode", { simple: true }) === "wal";
    if (!db.memory && !wal) db.pragma("synchronous = FULL");
    this.wal = wal ? walSync(db.name) : undefined;
    this.sync = this.wal?.sync;
  }

  private commitCount = 0;
  /** Bumped before every statement of this connection that can change the database (see changeStamp). */
  private epoch = 0;
  private lastDataVersion: number | undefined;
  private dataVersion: Database.Statement | undefined;

  /**
   * A number that stays the same only while nothing in the database can have changed: every statement
   * this connection runs that may write (including BEGIN, COMMIT, ROLLBACK and savepoints) bumps it, and
   * so does a commit by any other connection to the file, which SQLite reports through
   * `PRAGMA data_version` (a counter it advances only for other connections' commits). Taking it costs
   * that pragma (a shared-lock round, no table read). A cache entry checked against the database at one
   * stamp is still what the database holds while the stamp is unchanged.
   */
  changeStamp(): number {
    this.dataVersion ??= this.db.prepare("pragma data_version").pluck();
    const v = this.dataVersion.get() as number;
    if (v !== this.lastDataVersion) {
      this.lastDataVersion = v;
      this.epoch++;
    }
    return this.epoch;
  }

  /** Commits (transactions and writes outside one) and the WAL syncs that made them durable. */
  get stats(): { commits: number; syncs: number } {
    return { commits: this.commitCount, syncs: this.sync?.syncs ?? 0 };
  }

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    return Promise.resolve(this.free.pop() ?? new FleetSqliteConnection(this));
  }

  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    const c = conn as FleetSqliteConnection;
    if (this.owner === c) {
      // A transaction left open (its BEGIN or COMMIT threw): undo it so the connection is usable again.
      if (this.db.inTransaction) {
        this.epoch++;
        this.db.exec("rollback");
      }
      this.unlock();
    }
    // Kept for reuse, never dropped: Kysely remembers every connection object it was given, so the
    // number of objects stays at the highest concurrency seen.
    this.free.push(c);
  }

  async beginTransaction(conn: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    const c = conn as FleetSqliteConnection;
    await this.lock(c);
    try {
      this.control("begin immediate");
    } catch (e) {
      this.unlock();
      throw e;
    }
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await this.commitNoWait(conn);
  }

  /**
   * COMMITs and frees the connection at once; the returned promise resolves once the commit is durable.
   * Throws (synchronously) when COMMIT fails; the transaction is then still open for a ROLLBACK.
   */
  commitNoWait(conn: DatabaseConnection): Promise<void> {
    this.control("commit");
    this.commitCount++;
    if (this.owner === conn) this.unlock();
    if (!this.sync) return Promise.resolve();
    this.sync.wrote();
    return this.sync.durable();
  }

  /** Whether a transaction is open on the connection (SQLite ends one by itself on some errors). */
  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  private readonly controls = new Map<string, Database.Statement>();

  /** Runs a transaction-control statement (BEGIN, COMMIT, SAVEPOINT…), each prepared once. */
  control(sql: string): void {
    let stmt = this.controls.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.controls.set(sql, stmt);
    }
    this.epoch++;
    stmt.run();
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    try {
      if (this.db.inTransaction) this.control("rollback");
    } finally {
      if (this.owner === conn) this.unlock();
    }
  }

  async savepoint(
    _conn: DatabaseConnection,
    name: string,
    _compile: QueryCompiler["compileQuery"],
  ): Promise<void> {
    this.epoch++;
    this.db.exec(`savepoint "${name.replace(/"/g, "")}"`);
  }

  async rollbackToSavepoint(_conn: DatabaseConnection, name: string): Promise<void> {
    this.epoch++;
    this.db.exec(`rollback to "${name.replace(/"/g, "")}"`);
  }

  async releaseSavepoint(_conn: DatabaseConnection, name: string): Promise<void> {
    this.epoch++;
    this.db.exec(`release "${name.replace(/"/g, "")}"`);
  }

  async destroy(): Promise<void> {
    await this.sync?.settle();
    this.wal?.close();
    this.db.close();
  }

  /** Runs one statement for `conn`: at once if it owns the open transaction or none is open. */
  execute<R>(conn: FleetSqliteConnection, compiled: CompiledQuery): Promise<QueryResult<R>> {
    return this.executeFor<R>(conn, compiled.sql, compiled.parameters);
  }

  /** Runs one statement on `conn` (a transaction's connection): prepared queries' path inside one. */
  executeOn<R>(conn: DatabaseConnection, sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
    return this.executeFor<R>(conn as FleetSqliteConnection, sql, params);
  }

  /** Runs one statement outside any transaction (after the open one, if any): prepared queries' path. */
  executeDirect<R>(sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
    return this.executeFor<R>(undefined, sql, params);
  }

  private executeFor<R>(
    conn: FleetSqliteConnection | undefined,
    sql: string,
    params: readonly unknown[],
  ): Promise<QueryResult<R>> {
    if (this.owner !== undefined && this.owner !== conn) {
      return this.lock(conn ?? {}).then(() => {
        try {
          return this.run<R>(sql, params, false);
        } finally {
          this.unlock();
        }
      });
    }
    return this.run<R>(sql, params, this.owner !== undefined);
  }

  private run<R>(sql: string, params: readonly unknown[], inTransaction: boolean): Promise<QueryResult<R>> {
    const stmt = this.prepare(sql);
    if (!stmt.readonly) this.epoch++;
    if (stmt.reader) {
      const rows = stmt.all(params) as R[];
      // INSERT/UPDATE/DELETE … RETURNING reads and writes: outside a transaction it committed on its own.
      if (stmt.readonly || inTransaction) return Promise.resolve({ rows });
      this.commitCount++;
      if (!this.sync) return Promise.resolve({ rows });
      this.sync.wrote();
      return this.sync.durable().then(() => ({ rows }));
    }
    const { changes, lastInsertRowid } = stmt.run(params);
    const result: QueryResult<R> = {
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
      rows: [],
    };
    // A write outside a transaction committed on its own: it is acknowledged once durable.
    if (inTransaction || changes === 0) return Promise.resolve(result);
    this.commitCount++;
    if (!this.sync) return Promise.resolve(result);
    this.sync.wrote();
    return this.sync.durable().then(() => result);
  }

  private prepare(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      // DDL and transaction control change the schema or state; keep only ordinary statements.
      if (
        this.statements.size < MAX_CACHED_STATEMENTS &&
        /^\s*(select|insert|update|delete|with)\b/i.test(sql)
      ) {
        this.statements.set(sql, stmt);
      }
    }
    return stmt;
  }

  private lock(conn: object): Promise<void> {
    if (this.owner === undefined) {
      this.owner = conn;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiters.push(() => {
        this.owner = conn;
        resolve();
      }),
    );
  }

  private unlock(): void {
    this.owner = undefined;
    const next = this.waiters.shift();
    if (next) next();
  }
}

/** fdatasync of the database's WAL file, opened once (the WAL lives as long as the connection). */
function walSync(dbFile: string): { sync: GroupSync; close(): void } {
  let fd: number | undefined;
  const load = new LoopLoad();
  return {
    sync: new GroupSync(
      async () => {
        fd ??= openSync(`${dbFile}-wal`, "r+");
        const f = fd;
        await new Promise<void>((resolve, reject) => fdatasync(f, (e) => (e ? reject(e) : resolve())));
      },
      0,
      SYNC_GAP_MS,
      () => load.busy(),
    ),
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

const MAX_CACHED_STATEMENTS = 500;

class FleetSqliteConnection implements DatabaseConnection {
  constructor(private readonly driver: FleetSqliteDriver) {}

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute<R>(this, compiled);
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on SQLite");
  }
}
