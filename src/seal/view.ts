import type { Kysely, Transaction } from "kysely";
import type { Barrier } from "./barrier.js";
import type { SealTables } from "./migrations.js";

/**
 * Sealed blobs by path, for modules that need no table of their own. Each value is encrypted with
 * aad = its full path, so a value copied to another path fails to decrypt. Use `in(trx)` to make
 * several writes land together.
 */
export class BarrierView {
  constructor(
    private readonly barrier: Barrier,
    private readonly db: Kysely<object>,
    readonly prefix: string,
  ) {}

  /** The same view, reading and writing through a transaction. */
  in(trx: Transaction<object>): BarrierView {
    return new BarrierView(this.barrier, trx, this.prefix);
  }

  private get t() {
    return this.db.withTables<SealTables>();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const path = this.prefix + key;
    const row = await this.t
      .selectFrom("barrier_entries")
      .select("value")
      .where("path", "=", path)
      .executeTakeFirst();
    return row ? this.barrier.decrypt(path, row.value) : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const path = this.prefix + key;
    const ct = Buffer.from(await this.barrier.encrypt(path, value));
    await this.t
      .insertInto("barrier_entries")
      .values({ path, value: ct })
      .onConflict((oc) => oc.column("path").doUpdateSet({ value: ct }))
      .execute();
  }

  /** Returns whether an entry was there. */
  async delete(key: string): Promise<boolean> {
    const r = await this.t
      .deleteFrom("barrier_entries")
      .where("path", "=", this.prefix + key)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Keys (relative to the view) that start with prefix, sorted. Refused while sealed, like reads. */
  async list(prefix = ""): Promise<string[]> {
    this.barrier.assertUnsealed();
    const full = this.prefix + prefix;
    const rows = await this.t
      .selectFrom("barrier_entries")
      .select("path")
      // substr (which counts code points on both) rather than LIKE: SQLite's LIKE ignores ASCII case and both treat % and _ specially.
      .where((eb) => eb(eb.fn("substr", ["path", eb.val(1), eb.val([...full].length)]), "=", full))
      .execute();
    return rows.map((r) => r.path.slice(this.prefix.length)).sort();
  }
}
