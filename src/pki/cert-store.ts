/**
 * Issued certificates in `pki_cert`. Inserts are group-committed: every insert requested while a batch
 * is being written joins the next one (one transaction of prepared single-row INSERTs: nothing to build or
 * compile per batch), so concurrent issuance pays one commit per batch instead of one per certificate. A
 * batch that fails (a duplicate serial) falls back to row-by-row inserts so only the offending request fails.
 */
import { X509Certificate } from "node:crypto";
import { sql } from "kysely";
import { FleetError } from "../errors/index.js";
import { isUniqueViolation, type Store } from "../store/index.js";
import { PreparedQuery } from "../store/prepared.js";
import type { PkiTables } from "./migrations.js";

export type CertRow = PkiTables["pki_cert"];

const COLUMNS = [
  "issuer_id",
  "serial",
  "subject",
  "sans",
  "not_before",
  "not_after",
  "role",
  "requester",
  "der",
  "created_at",
  "revoked_at",
  "revocation_reason",
] as const satisfies readonly (keyof CertRow)[];

/**
 * The row of a CA certificate this node signed (an intermediate): no role, no SANs, its subject and
 * validity read from the certificate.
 */
export function caCertRow(
  issuerId: string,
  serial: string,
  der: Buffer,
  requester: string | null,
  now: number,
): CertRow {
  const cert = new X509Certificate(der);
  return {
    issuer_id: issuerId,
    serial,
    subject: cert.subject.replace(/\n/g, ","),
    sans: "{}",
    not_before: Date.parse(cert.validFrom),
    not_after: Date.parse(cert.validTo),
    role: null,
    requester,
    der,
    created_at: now,
    revoked_at: null,
    revocation_reason: null,
  };
}

/** Every column but the certificate itself: what listings return. */
const LISTED = COLUMNS.filter((c): c is Exclude<(typeof COLUMNS)[number], "der"> => c !== "der");

const insertCert = new PreparedQuery<PkiTables, never>(COLUMNS.length, (db, ...params) =>
  db
    .insertInto("pki_cert")
    .values(Object.fromEntries(COLUMNS.map((c, i) => [c, params[i]])) as unknown as CertRow),
);

const insertRow = (db: Parameters<typeof insertCert.execute>[0], row: CertRow) =>
  insertCert.execute(db, ...COLUMNS.map((c) => row[c] ?? null));

interface Pending {
  row: CertRow;
  resolve(): void;
  reject(e: unknown): void;
}

/** Rows per transaction: a large backlog is committed in steps, not held in one long write lock. */
const BATCH = 400;

export class CertStore {
  private queue: Pending[] = [];
  private writing = false;

  constructor(private readonly store: Store) {}

  private get t() {
    return this.store.db.withTables<PkiTables>();
  }

  /** Stores a certificate; resolves once committed. A duplicate (issuer, serial) → FR_CONFLICT. */
  insert(row: CertRow): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, BATCH);
        try {
          await this.store.transaction(async (trx) => {
            const t = trx.withTables<PkiTables>();
            for (const p of batch) await insertRow(t, p.row);
          });
          for (const p of batch) p.resolve();
        } catch {
          for (const p of batch) {
            try {
              await insertRow(this.t, p.row);
              p.resolve();
            } catch (e) {
              // Only a duplicate is a conflict; anything else is reported as what it is.
              p.reject(
                isUniqueViolation(e)
                  ? new FleetError("FR_CONFLICT", `serial ${p.row.serial} already exists for this issuer`, {
                      cause: e,
                    })
                  : e,
              );
            }
          }
        }
      }
    } finally {
      this.writing = false;
    }
  }

  async get(serial: string, issuerId?: string): Promise<CertRow | undefined> {
    let q = this.t.selectFrom("pki_cert").selectAll().where("serial", "=", serial);
    if (issuerId) q = q.where("issuer_id", "=", issuerId);
    return q.orderBy("created_at").executeTakeFirst();
  }

  /** The status columns only (the OCSP path). */
  async status(
    issuerId: string,
    serial: string,
  ): Promise<Pick<CertRow, "revoked_at" | "revocation_reason" | "not_after"> | undefined> {
    return this.t
      .selectFrom("pki_cert")
      .select(["revoked_at", "revocation_reason", "not_after"])
      .where("issuer_id", "=", issuerId)
      .where("serial", "=", serial)
      .executeTakeFirst();
  }

  /** Serials in order, after `after` (keyset paging). */
  async list(after: string | undefined, limit: number): Promise<Omit<CertRow, "der">[]> {
    let q = this.t.selectFrom("pki_cert").select(LISTED);
    if (after) q = q.where("serial", ">", after);
    return q.orderBy("serial").orderBy("issuer_id").limit(limit).execute();
  }

  /**
   * Marks a certificate revoked unless it already is. Returns the row as it now stands and whether this
   * call revoked it (a repeated revocation keeps the first time and reason: idempotent).
   */
  async revoke(
    issuerId: string,
    serial: string,
    at: number,
    reason: number,
  ): Promise<{ changed: boolean; revokedAt: number; reason: number; notAfter: number }> {
    const r = await this.t
      .updateTable("pki_cert")
      .set({ revoked_at: at, revocation_reason: reason })
      .where("issuer_id", "=", issuerId)
      .where("serial", "=", serial)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    const row = await this.status(issuerId, serial);
    if (!row) throw new FleetError("FR_PKI_CERT_NOT_FOUND", `no certificate ${serial}`);
    return {
      changed: Number(r.numUpdatedRows) > 0,
      revokedAt: Number(row.revoked_at),
      reason: Number(row.revocation_reason ?? 0),
      notAfter: Number(row.not_after),
    };
  }

  /** Revoked, unexpired certificates of an issuer, in pages (keyset on serial), for loading the CRL state. */
  async *revoked(
    issuerId: string,
    now: number,
    upTo: number,
    pageSize = 10_000,
  ): AsyncGenerator<Pick<CertRow, "serial" | "revoked_at" | "revocation_reason" | "not_after">[]> {
    let after = "";
    for (;;) {
      const page = await this.t
        .selectFrom("pki_cert")
        .select(["serial", "revoked_at", "revocation_reason", "not_after"])
        .where("issuer_id", "=", issuerId)
        .where("serial", ">", after)
        .where("revoked_at", "<=", upTo)
        .where("not_after", ">", now)
        .orderBy("serial")
        .limit(pageSize)
        .execute();
      if (page.length === 0) return;
      yield page;
      after = (page[page.length - 1] as CertRow).serial;
      if (page.length < pageSize) return;
    }
  }

  /** Revocations at or after `since` (the delta CRL's entries). */
  async revokedSince(
    issuerId: string,
    since: number,
  ): Promise<Pick<CertRow, "serial" | "revoked_at" | "revocation_reason">[]> {
    return this.t
      .selectFrom("pki_cert")
      .select(["serial", "revoked_at", "revocation_reason"])
      .where("issuer_id", "=", issuerId)
      .where("revoked_at", ">=", since)
      .orderBy("revoked_at")
      .execute();
  }

  async count(): Promise<number> {
    const r = await this.t
      .selectFrom("pki_cert")
      .select(sql<number>`count(*)`.as("n"))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }
}
