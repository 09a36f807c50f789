import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/**
 * Enrollment tables. Join tokens are stored as their SHA-256 only (a token is 256 random bits, so a
 * plain hash is enough: there is nothing to brute-force offline). Nonces likewise. Keys and CA
 * certificates are public material.
 */
export const enrollMigrations: MigrationSet = {
  "2001_fleet_enroll": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      const big = bigintType(d);
      await db.schema
        .createTable("fleet_provisioner")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        // JSON: the normalized definition (src/enroll/provisioner-config.ts).
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("created_at", big, (c) => c.notNull())
        .addColumn("updated_at", big, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("fleet_join_token")
        .addColumn("hash", "text", (c) => c.primaryKey())
        // Public handle for listing and audit; never the token.
        .addColumn("accessor", "text", (c) => c.notNull().unique())
        .addColumn("provisioner", "text", (c) => c.notNull())
        .addColumn("device_id", "text")
        .addColumn("expires_at", big, (c) => c.notNull())
        .addColumn("used_at", big)
        .addColumn("created_at", big, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("fleet_join_token_expiry")
        .on("fleet_join_token")
        .column("expires_at")
        .execute();

      await db.schema
        .createTable("fleet_registered_key")
        // sha256 hex of the SubjectPublicKeyInfo DER.
        .addColumn("fingerprint", "text", (c) => c.primaryKey())
        .addColumn("provisioner", "text", (c) => c.notNull())
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("spki", blobType(d), (c) => c.notNull())
        .addColumn("created_at", big, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("fleet_registered_key_device")
        .on("fleet_registered_key")
        .column("device_id")
        .execute();

      await db.schema
        .createTable("fleet_psa_key")
        // Lowercase hex of the PSA instance id (UEID).
        .addColumn("instance_id", "text", (c) => c.primaryKey())
        .addColumn("provisioner", "text", (c) => c.notNull())
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("spki", blobType(d), (c) => c.notNull())
        .addColumn("created_at", big, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("fleet_manufacturer")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("certificate", blobType(d), (c) => c.notNull())
        .addColumn("crl", blobType(d))
        .addColumn("created_at", big, (c) => c.notNull())
        .addColumn("updated_at", big, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("fleet_nonce")
        .addColumn("hash", "text", (c) => c.primaryKey())
        .addColumn("expires_at", big, (c) => c.notNull())
        .execute();
      await db.schema.createIndex("fleet_nonce_expiry").on("fleet_nonce").column("expires_at").execute();
    },
  },
};

export type EnrollTables = {
  fleet_provisioner: {
    name: string;
    type: string;
    role: string;
    config: string;
    created_at: number;
    updated_at: number;
  };
  fleet_join_token: {
    hash: string;
    accessor: string;
    provisioner: string;
    device_id: string | null;
    expires_at: number;
    used_at: number | null;
    created_at: number;
  };
  fleet_registered_key: {
    fingerprint: string;
    provisioner: string;
    device_id: string;
    spki: Uint8Array;
    created_at: number;
  };
  fleet_psa_key: {
    instance_id: string;
    provisioner: string;
    device_id: string;
    spki: Uint8Array;
    created_at: number;
  };
  fleet_manufacturer: {
    name: string;
    certificate: Uint8Array;
    crl: Uint8Array | null;
    created_at: number;
    updated_at: number;
  };
  fleet_nonce: { hash: string; expires_at: number };
};
