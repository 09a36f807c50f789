import { type Compilable, CompiledQuery, type Kysely, type QueryExecutor, type QueryResult } from "kysely";
import { dialectOf } from "./columns.js";
import type { Dialect } from "./types.js";

/** Runs SQL on a store's own connection, bypassing Kysely's executor (see registerDirectRunner). */
export type DirectRunner = (sql: string, params: readonly unknown[]) => Promise<QueryResult<unknown>>;

/**
 * Executors whose queries a prepared query may hand straight to the driver. Keyed by the executor, which
 * a store's Kysely shares with its withTables() views and which a transaction replaces with its own, so
 * statements inside a transaction always go through the transaction's connection.
 */
const directRunners = new WeakMap<QueryExecutor, DirectRunner>();

/** Lets prepared queries on db (outside transactions) skip Kysely's executor and call runner instead. */
export function registerDirectRunner(db: Kysely<object>, runner: DirectRunner): void {
  directRunners.set(db.getExecutor(), runner);
}

/**
 * A hot query built and compiled once per database, then run with new parameters: Kysely's builder and
 * compiler cost more than SQLite takes to answer a primary-key lookup. `build` receives one sentinel per
 * parameter and must use each exactly where the parameter goes; run() binds the values in that order.
 */
export class PreparedQuery<DB, Row> {
  /** The SQL depends only on the dialect, so a transaction's Kysely shares the store's compilation. */
  private readonly compiled = new Map<Dialect, { sql: string; order: number[] }>();

  constructor(
    private readonly arity: number,
    private readonly build: (db: Kysely<DB>, ...params: string[]) => Compilable<Row>,
  ) {}

  async run(db: Kysely<DB>, ...params: unknown[]): Promise<Row[]> {
    return (await this.execute(db, ...params)).rows;
  }

  /** Runs it and returns Kysely's whole result (numAffectedRows for writes). */
  async execute(db: Kysely<DB>, ...params: unknown[]): Promise<QueryResult<Row>> {
    const dialect = dialectOf(db as Kysely<unknown>);
    let c = this.compiled.get(dialect);
    if (!c) {
      const sentinels = Array.from({ length: this.arity }, (_, i) => `\u0000fleetroot-param-${i}\u0000`);
      const q = this.build(db, ...sentinels).compile();
      const order = q.parameters.map((p) => {
        const i = sentinels.indexOf(p as string);
        if (i < 0) throw new Error(`prepared query: parameter ${String(p)} is not a sentinel`);
        return i;
      });
      c = { sql: q.sql, order };
      this.compiled.set(dialect, c);
    }
    const values = c.order.map((i) => params[i]);
    const direct = directRunners.get(db.getExecutor());
    if (direct) return direct(c.sql, values) as Promise<QueryResult<Row>>;
    return db.executeQuery<Row>(CompiledQuery.raw(c.sql, values));
  }
}
