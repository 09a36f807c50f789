import type { Kysely } from "kysely";
import { bigintType, dialectOf, type MigrationSet, type Store } from "../store/index.js";

/**
 * The store's record of how far the audit log reached: the seq and line hash of its latest durable signed
 * checkpoint (or of its genesis line, before the first checkpoint). The log file alone cannot show that lines
 * were cut from its end, or that it was emptied or replaced by a fresh log: every prefix of a valid log is
 * valid. The anchor, kept in the store rather than beside the file, can: a log that no longer holds the
 * anchored line, with the anchored hash, has lost lines.
 */
export interface AuditAnchor {
  /** hex SHA-256 of the audit key's SPKI (the genesis line's key_id). */
  keyId: string;
  seq: number;
  /** hex SHA-256 of the line at `seq` (lineHash), i.e. the next line's `prev`. */
  head: string;
}

type AnchorTables = {
  audit_anchor: { id: string; key_id: string; seq: number; head: string; updated_ms: number };
};

const ROW = "log";

/** The audit module's table (0300 range). */
export const auditMigrations: MigrationSet = {
  "0300_audit_anchor": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("audit_anchor")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("key_id", "text", (c) => c.notNull())
        .addColumn("seq", bigintType(d), (c) => c.notNull())
        .addColumn("head", "text", (c) => c.notNull())
        .addColumn("updated_ms", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
};

function table(store: Pick<Store, "db">): Kysely<AnchorTables> {
  return store.db.withTables<AnchorTables>();
}

/** The recorded anchor; undefined before the first log line was made durable (a new install). */
export async function readAuditAnchor(store: Pick<Store, "db">): Promise<AuditAnchor | undefined> {
  const row = await table(store)
    .selectFrom("audit_anchor")
    .select(["key_id", "seq", "head"])
    .where("id", "=", ROW)
    .executeTakeFirst();
  return row ? { keyId: row.key_id, seq: Number(row.seq), head: row.head } : undefined;
}

/** Records `anchor` as the log's latest durable checkpoint (callers pass them in increasing seq order). */
export async function writeAuditAnchor(
  store: Pick<Store, "db">,
  anchor: AuditAnchor,
  nowMs: number,
): Promise<void> {
  const row = { key_id: anchor.keyId, seq: anchor.seq, head: anchor.head, updated_ms: nowMs };
  await table(store)
    .insertInto("audit_anchor")
    .values({ id: ROW, ...row })
    .onConflict((oc) => oc.column("id").doUpdateSet(row))
    .execute();
}
