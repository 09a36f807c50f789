import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import { tables } from "./repo-db.js";

/**
 * A named lease in the shared store, so that one node of several on one PostgreSQL runs a job. Taking it
 * is one conditional UPDATE (holder is me, or the lease expired): the database decides between nodes.
 */
export class Lease {
  constructor(
    private readonly deps: { store: Store; clock: Clock },
    readonly name: string,
    readonly holder: string,
  ) {}

  /** True when this holder has the lease until now + ttlMs. */
  async acquire(ttlMs: number): Promise<boolean> {
    const db = tables(this.deps.store.db);
    const now = this.deps.clock.now().getTime();
    await db
      .insertInto("updates_leases")
      .values({ name: this.name, holder: this.holder, expires_ms: 0 })
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    const r = await db
      .updateTable("updates_leases")
      .set({ holder: this.holder, expires_ms: now + ttlMs })
      .where("name", "=", this.name)
      .where((eb) => eb.or([eb("holder", "=", this.holder), eb("expires_ms", "<", now)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async release(): Promise<void> {
    await tables(this.deps.store.db)
      .updateTable("updates_leases")
      .set({ expires_ms: 0 })
      .where("name", "=", this.name)
      .where("holder", "=", this.holder)
      .execute();
  }
}
