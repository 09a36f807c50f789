import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/**
 * Device registry tables. Labels live in their own table, indexed by (key, value, device), so a label
 * filter is an index range and not a scan of JSON. Every list query pages by device id (keyset paging),
 * so its cost does not grow with the offset; the (status, id) and (provisioner, id) indexes serve the
 * common filters in id order.
 */
export const deviceMigrations: MigrationSet = {
  "2000_fleet_devices": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("fleet_device")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        // JSON object of string labels, as given (the label table is the index).
        .addColumn("labels", "text", (c) => c.notNull())
        // pending | active | suspended | decommissioned
        .addColumn("status", "text", (c) => c.notNull())
        // join-token | registered-key | x509 | psa (the provisioner type that enrolled it)
        .addColumn("method", "text")
        .addColumn("provisioner", "text")
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .addColumn("updated_at", bigintType(d), (c) => c.notNull())
        .addColumn("last_seen", bigintType(d))
        .execute();
      await db.schema
        .createIndex("fleet_device_status")
        .on("fleet_device")
        .columns(["status", "id"])
        .execute();
      await db.schema
        .createIndex("fleet_device_provisioner")
        .on("fleet_device")
        .columns(["provisioner", "id"])
        .execute();
      await db.schema.createIndex("fleet_device_name").on("fleet_device").columns(["name", "id"]).execute();

      await db.schema
        .createTable("fleet_device_label")
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("value", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("fleet_device_label_pk", ["device_id", "key"])
        .execute();
      await db.schema
        .createIndex("fleet_device_label_kv")
        .on("fleet_device_label")
        .columns(["key", "value", "device_id"])
        .execute();

      await db.schema
        .createTable("fleet_device_cert")
        .addColumn("issuer_id", "text", (c) => c.notNull())
        // Lowercase hex serial, as pki/ stores it.
        .addColumn("serial", "text", (c) => c.notNull())
        .addColumn("device_id", "text", (c) => c.notNull())
        // sha256 hex of the DER: how a TLS client certificate is found at renewal.
        .addColumn("fingerprint", "text", (c) => c.notNull().unique())
        .addColumn("der", blobType(d), (c) => c.notNull())
        .addColumn("not_before", bigintType(d), (c) => c.notNull())
        .addColumn("not_after", bigintType(d), (c) => c.notNull())
        // 1 for the device's current certificate, 0 for past ones.
        .addColumn("current", "integer", (c) => c.notNull())
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .addColumn("revoked_at", bigintType(d))
        .addPrimaryKeyConstraint("fleet_device_cert_pk", ["issuer_id", "serial"])
        .execute();
      await db.schema
        .createIndex("fleet_device_cert_device")
        .on("fleet_device_cert")
        .columns(["device_id", "created_at"])
        .execute();
    },
  },
};

export type DeviceStatus = "pending" | "active" | "suspended" | "decommissioned";

export type DeviceTables = {
  fleet_device: {
    id: string;
    name: string;
    labels: string;
    status: DeviceStatus;
    method: string | null;
    provisioner: string | null;
    created_at: number;
    updated_at: number;
    last_seen: number | null;
  };
  fleet_device_label: { device_id: string; key: string; value: string };
  fleet_device_cert: {
    issuer_id: string;
    serial: string;
    device_id: string;
    fingerprint: string;
    der: Uint8Array;
    not_before: number;
    not_after: number;
    current: number;
    created_at: number;
    revoked_at: number | null;
  };
};
