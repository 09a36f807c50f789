import type Database from "better-sqlite3";
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

/**
 * Kysely driver for better-sqlite3, with two differences from the stock one that matter under load:
 * waiters for the single connection are queued FIFO (the stock mutex wakes every waiter on each
 * release, which is quadratic with many concurrent requests), and prepared statements are cached by SQL
 * text instead of being prepared again for every query.
 */
export class FleetSqliteDriver implements Driver {
  private readonly connection: FleetSqliteConnection;
  private busy = false;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly db: Database.Database) {
    this.connection = new FleetSqliteConnection(db);
  }

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.connection);
    }
    return new Promise((resolve) => this.waiters.push(() => resolve(this.connection)));
  }

  async releaseConnection(): Promise<void> {
    const next = this.waiters.shift();
    if (next) next();
    else this.busy = false;
  }

  async beginTransaction(conn: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("begin immediate"));
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("rollback"));
  }

  async savepoint(
    conn: DatabaseConnection,
    name: string,
    _compile: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`savepoint "${name.replace(/"/g, "")}"`));
  }

  async rollbackToSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`rollback to "${name.replace(/"/g, "")}"`));
  }

  async releaseSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`release "${name.replace(/"/g, "")}"`));
  }

  async destroy(): Promise<void> {
    this.db.close();
  }
}

const MAX_CACHED_STATEMENTS = 500;

class FleetSqliteConnection implements DatabaseConnection {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

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

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.prepare(compiled.sql);
    const params = compiled.parameters as unknown[];
    if (stmt.reader) return Promise.resolve({ rows: stmt.all(params) as R[] });
    const { changes, lastInsertRowid } = stmt.run(params);
    return Promise.resolve({
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
      rows: [],
    });
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on SQLite");
  }
}
