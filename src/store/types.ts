import type { Kysely, Migration, Transaction } from "kysely";

export type Dialect = "sqlite" | "postgres";

/**
 * A module's migrations. Names sort globally (Kysely runs them in name order), so each module
 * takes its own prefix range: 0100 seal, 0200 auth, 0300 audit, 1000 pki, 2000 devices/enroll,
 * 3000 ros2, 4000 secrets, 5000 updates.
 */
export type MigrationSet = Record<string, Migration>;

/**
 * The SQL store. Modules type their own tables with `store.db.withTables<MyTables>()`.
 * Column conventions that hold on both dialects: text, integer (bigint on PostgreSQL, read back as
 * a JS number), blob/bytea (read back as Buffer); times are integer milliseconds since the epoch.
 */
export interface Store {
  readonly dialect: Dialect;
  readonly db: Kysely<object>;
  /** Runs fn in one transaction; everything it writes lands together or not at all. */
  transaction<T>(fn: (trx: Transaction<object>) => Promise<T>): Promise<T>;
  /**
   * Like transaction(), but resolves once the transaction has committed — its writes visible, not yet
   * known to be on disk — with `durable`, which resolves once they are (or rejects if they cannot be made
   * so). For callers that have other waits to overlap with the sync (a reply that also waits for its audit
   * entry); whoever acknowledges the work must wait for `durable` first. On PostgreSQL, where commits are
   * durable when they return, `durable` is already resolved.
   */
  transactionCommitted<T>(
    fn: (trx: Transaction<object>) => Promise<T>,
  ): Promise<{ result: T; durable: Promise<void> }>;
  close(): Promise<void>;
  /** SQLite: commits and the WAL syncs that made them durable (group commit); PostgreSQL syncs its own. */
  readonly stats?: () => { commits: number; syncs: number };
  /**
   * SQLite: a number that changes whenever the database may have changed since it was last taken — any
   * write through this store, or a commit by another connection to the file. A cache checked against the
   * database at one stamp may answer without asking again while the stamp is unchanged. Absent on
   * PostgreSQL, where commits by other nodes are not seen without a query.
   */
  readonly changeStamp?: () => number;
}
