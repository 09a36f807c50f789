import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/**
 * PKI tables. Issuers keep their key URI sealed by the barrier (it may carry a PKCS#11 PIN); issued
 * certificates are keyed by (issuer, serial) so a serial is unique per issuer, with the revocation state
 * on the same row so a revocation is one primary-key update.
 */
export const pkiMigrations: MigrationSet = {
  "1000_pki_issuers": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("pki_issuer")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        // The key URI, encrypted by the barrier (aad pki_issuer/<id>/key).
        .addColumn("key_uri", blobType(d), (c) => c.notNull())
        .addColumn("public_key", blobType(d), (c) => c.notNull())
        // NULL while an intermediate waits for its signed certificate (set-signed).
        .addColumn("certificate", blobType(d))
        // The rest of the chain up to the root, DER certificates concatenated.
        .addColumn("chain", blobType(d))
        .addColumn("csr", blobType(d))
        .addColumn("not_after", bigintType(d))
        .addColumn("is_default", "integer", (c) => c.notNull().defaultTo(0))
        // Complete and delta CRLs share one number sequence (RFC 5280 5.2.4).
        .addColumn("crl_number", bigintType(d), (c) => c.notNull().defaultTo(0))
        // Delegated OCSP responder (RFC 6960 4.2.2.2): key URI (sealed) and certificate.
        .addColumn("ocsp_key_uri", blobType(d))
        .addColumn("ocsp_certificate", blobType(d))
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
  "1001_pki_roles": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("pki_role")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("updated_at", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
  "1002_pki_certs": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("pki_cert")
        .addColumn("issuer_id", "text", (c) => c.notNull())
        // Lowercase hex of the serial's magnitude.
        .addColumn("serial", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        // JSON {dns, uri, ip, email}.
        .addColumn("sans", "text", (c) => c.notNull())
        .addColumn("not_before", bigintType(d), (c) => c.notNull())
        .addColumn("not_after", bigintType(d), (c) => c.notNull())
        .addColumn("role", "text")
        .addColumn("requester", "text")
        .addColumn("der", blobType(d), (c) => c.notNull())
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .addColumn("revoked_at", bigintType(d))
        .addColumn("revocation_reason", "integer")
        .addPrimaryKeyConstraint("pki_cert_pk", ["issuer_id", "serial"])
        .execute();
      await db.schema.createIndex("pki_cert_serial").on("pki_cert").column("serial").execute();
      await db.schema
        .createIndex("pki_cert_revoked")
        .on("pki_cert")
        .columns(["issuer_id", "revoked_at"])
        .execute();
    },
  },
};

export type PkiTables = {
  pki_issuer: {
    id: string;
    name: string;
    key_uri: Uint8Array;
    public_key: Uint8Array;
    certificate: Uint8Array | null;
    chain: Uint8Array | null;
    csr: Uint8Array | null;
    not_after: number | null;
    is_default: number;
    crl_number: number;
    ocsp_key_uri: Uint8Array | null;
    ocsp_certificate: Uint8Array | null;
    created_at: number;
  };
  pki_role: { name: string; config: string; updated_at: number };
  pki_cert: {
    issuer_id: string;
    serial: string;
    subject: string;
    sans: string;
    not_before: number;
    not_after: number;
    role: string | null;
    requester: string | null;
    der: Uint8Array;
    created_at: number;
    revoked_at: number | null;
    revocation_reason: number | null;
  };
};
