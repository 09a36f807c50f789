/**
 * The device registry: devices, their labels and their certificates (current and past), with the
 * lifecycle pending → active ⇄ suspended → decommissioned. It records; it does not sign or revoke —
 * enroll/ asks pki/ for certificates and tells the registry what was issued or revoked.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { DeviceStatus, DeviceTables } from "./migrations.js";
import { checkDeviceId, checkLabels, checkName } from "./validate.js";

type Db = Kysely<DeviceTables>;
type DeviceRow = DeviceTables["fleet_device"];
type CertRow = DeviceTables["fleet_device_cert"];

export interface DeviceCertificate {
  readonly issuerId: string;
  readonly serial: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly current: boolean;
  readonly revokedAt: number | null;
  readonly der: Buffer;
}

export interface Device {
  readonly id: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly status: DeviceStatus;
  readonly method: string | null;
  readonly provisioner: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly lastSeen: number | null;
}

export interface DeviceFilter {
  readonly status?: DeviceStatus | undefined;
  readonly provisioner?: string | undefined;
  readonly labels?: Record<string, string> | undefined;
  readonly namePrefix?: string | undefined;
  /** Keyset cursor: the last id of the previous page. */
  readonly after?: string | undefined;
  readonly limit: number;
}

export interface NewDevice {
  readonly id?: string | undefined;
  readonly name?: string | undefined;
  readonly labels?: Record<string, string> | undefined;
  readonly status: DeviceStatus;
  readonly method?: string | undefined;
  readonly provisioner?: string | undefined;
}

export interface IssuedCertificate {
  readonly issuerId: string;
  readonly serial: string;
  readonly der: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
}

export const deviceStatuses: readonly DeviceStatus[] = ["pending", "active", "suspended", "decommissioned"];

export const certFingerprint = (der: Uint8Array): string => createHash("sha256").update(der).digest("hex");

export class DeviceRegistry {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** The typed executor: `trx` inside a transaction (SQLite has one connection), else the store. */
  db(trx?: Kysely<object>): Db {
    return (trx ?? this.store.db).withTables<DeviceTables>();
  }

  async create(input: NewDevice, trx?: Kysely<object>): Promise<Device> {
    const id = input.id === undefined ? randomUUID() : checkDeviceId(input.id);
    const name = input.name === undefined ? id : checkName(input.name);
    const labels = checkLabels(input.labels);
    const now = this.clock.now().getTime();
    const row: DeviceRow = {
      id,
      name,
      labels: JSON.stringify(labels),
      status: input.status,
      method: input.method ?? null,
      provisioner: input.provisioner ?? null,
      created_at: now,
      updated_at: now,
      last_seen: null,
    };
    const write = async (t: Kysely<object>) => {
      const db = this.db(t);
      if (await db.selectFrom("fleet_device").select("id").where("id", "=", id).executeTakeFirst()) {
        fail("FR_CONFLICT", `a device with id "${id}" already exists`);
      }
      await db.insertInto("fleet_device").values(row).execute();
      await this.writeLabels(db, id, labels);
    };
    if (trx) await write(trx);
    else await this.store.transaction(write);
    return toDevice(row);
  }

  private async writeLabels(db: Db, id: string, labels: Record<string, string>): Promise<void> {
    await db.deleteFrom("fleet_device_label").where("device_id", "=", id).execute();
    const rows = Object.entries(labels).map(([key, value]) => ({ device_id: id, key, value }));
    if (rows.length) await db.insertInto("fleet_device_label").values(rows).execute();
  }

  async find(id: string, trx?: Kysely<object>): Promise<Device | undefined> {
    const row = await this.db(trx)
      .selectFrom("fleet_device")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? toDevice(row) : undefined;
  }

  async get(id: string, trx?: Kysely<object>): Promise<Device> {
    return (
      (await this.find(id, trx)) ?? fail("FR_DEVICE_NOT_FOUND", `no device with id "${id.slice(0, 128)}"`)
    );
  }

  /** One page in id order; `next` is the cursor for the following page, absent on the last one. */
  async list(f: DeviceFilter): Promise<{ devices: Device[]; next: string | undefined }> {
    const db = this.db();
    let q = db.selectFrom("fleet_device as d").selectAll("d");
    const labels = Object.entries(f.labels ?? {});
    const [first, ...rest] = labels;
    // The first label filter drives the query through the (key, value, device_id) index.
    if (first) {
      q = q
        .innerJoin("fleet_device_label as l", "l.device_id", "d.id")
        .where("l.key", "=", first[0])
        .where("l.value", "=", first[1]);
    }
    for (const [k, v] of rest) {
      q = q.where(({ exists, selectFrom }) =>
        exists(
          selectFrom("fleet_device_label as x")
            .select("x.device_id")
            .whereRef("x.device_id", "=", "d.id")
            .where("x.key", "=", k)
            .where("x.value", "=", v),
        ),
      );
    }
    if (f.status) q = q.where("d.status", "=", f.status);
    if (f.provisioner) q = q.where("d.provisioner", "=", f.provisioner);
    if (f.namePrefix) {
      // A range instead of LIKE: index-friendly and no wildcard escaping.
      q = q.where("d.name", ">=", f.namePrefix).where("d.name", "<", f.namePrefix + "\uffff");
    }
    // With a label filter, page along the label index's device_id order, so the query walks the index
    // instead of sorting every match.
    // (The cast: q's static type predates the join; l.device_id exists whenever `first` is set.)
    const key = (first ? "l.device_id" : "d.id") as "d.id";
    if (f.after) q = q.where(key, ">", f.after);
    const rows = await q
      .orderBy(key)
      .limit(f.limit + 1)
      .execute();
    const page = rows.slice(0, f.limit).map(toDevice);
    return { devices: page, next: rows.length > f.limit ? page[page.length - 1]?.id : undefined };
  }

  async setLabels(id: string, labels: Record<string, string>): Promise<Device> {
    const checked = checkLabels(labels);
    await this.store.transaction(async (trx) => {
      const db = this.db(trx);
      const r = await db
        .updateTable("fleet_device")
        .set({ labels: JSON.stringify(checked), updated_at: this.clock.now().getTime() })
        .where("id", "=", id)
        // A decommissioned device is final: its record stays as it was when it left the fleet.
        .where("status", "!=", "decommissioned")
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) {
        const d = await this.get(id, trx);
        fail("FR_DEVICE_STATE", `device "${d.id}" is ${d.status}; its labels can no longer change`);
      }
      await this.writeLabels(db, id, checked);
    });
    return this.get(id);
  }

  /**
   * Moves a device to `to` if its status is one of `from`; the check and the write are one statement,
   * so two concurrent transitions cannot both win.
   */
  async transition(
    id: string,
    from: readonly DeviceStatus[],
    to: DeviceStatus,
    trx?: Kysely<object>,
  ): Promise<Device> {
    const db = this.db(trx);
    const r = await db
      .updateTable("fleet_device")
      .set({ status: to, updated_at: this.clock.now().getTime() })
      .where("id", "=", id)
      .where("status", "in", [...from])
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      const d = await this.get(id, trx);
      fail(
        "FR_DEVICE_STATE",
        `device "${id}" is ${d.status}; only a ${from.join(" or ")} device can become ${to}`,
      );
    }
    return this.get(id, trx);
  }

  /** Resumes a suspended device: active again, or pending when it was suspended before its first certificate. */
  async resume(id: string): Promise<Device> {
    return this.store.transaction(async (trx) => {
      const issued = await this.db(trx)
        .selectFrom("fleet_device_cert")
        .select("serial")
        .where("device_id", "=", id)
        .executeTakeFirst();
      return this.transition(id, ["suspended"], issued ? "active" : "pending", trx);
    });
  }

  /** Records a newly issued certificate as the device's current one and marks the device active. */
  async addCertificate(
    deviceId: string,
    cert: IssuedCertificate,
    trx?: Kysely<object>,
    extra: { method?: string; provisioner?: string } = {},
  ): Promise<void> {
    const now = this.clock.now().getTime();
    const write = async (t: Kysely<object>) => {
      const db = this.db(t);
      // Strictly increasing per device, so "newest first" is well defined even within one millisecond.
      const last = await db
        .selectFrom("fleet_device_cert")
        .select((eb) => eb.fn.max("created_at").as("m"))
        .where("device_id", "=", deviceId)
        .executeTakeFirst();
      const createdAt = Math.max(now, Number(last?.m ?? 0) + 1);
      await db
        .updateTable("fleet_device_cert")
        .set({ current: 0 })
        .where("device_id", "=", deviceId)
        .execute();
      await db
        .insertInto("fleet_device_cert")
        .values({
          issuer_id: cert.issuerId,
          serial: cert.serial,
          device_id: deviceId,
          fingerprint: certFingerprint(cert.der),
          der: cert.der,
          not_before: cert.notBefore,
          not_after: cert.notAfter,
          current: 1,
          created_at: createdAt,
          revoked_at: null,
        })
        .execute();
      const r = await db
        .updateTable("fleet_device")
        .set({
          status: "active",
          updated_at: now,
          last_seen: now,
          ...(extra.method ? { method: extra.method } : {}),
          ...(extra.provisioner ? { provisioner: extra.provisioner } : {}),
        })
        .where("id", "=", deviceId)
        .where("status", "in", ["pending", "active"])
        .executeTakeFirst();
      // Suspended or decommissioned since the caller checked (a renewal racing a decommission): the
      // certificate must not be recorded as the device's, unrevoked. Throwing rolls the insert back.
      if (Number(r.numUpdatedRows) !== 1) {
        const d = await this.get(deviceId, t);
        fail("FR_DEVICE_STATE", `device "${deviceId}" is ${d.status}; it cannot take a new certificate`);
      }
    };
    if (trx) await write(trx);
    else await this.store.transaction(write);
  }

  async certificates(deviceId: string): Promise<DeviceCertificate[]> {
    const rows = await this.db()
      .selectFrom("fleet_device_cert")
      .selectAll()
      .where("device_id", "=", deviceId)
      .orderBy("created_at", "desc")
      .execute();
    return rows.map(toCert);
  }

  async certificateByFingerprint(
    fingerprint: string,
  ): Promise<(DeviceCertificate & { deviceId: string }) | undefined> {
    const row = await this.db()
      .selectFrom("fleet_device_cert")
      .selectAll()
      .where("fingerprint", "=", fingerprint)
      .executeTakeFirst();
    return row ? { ...toCert(row), deviceId: row.device_id } : undefined;
  }

  async markRevoked(issuerId: string, serial: string, at: number): Promise<void> {
    await this.db()
      .updateTable("fleet_device_cert")
      .set({ revoked_at: at, current: 0 })
      .where("issuer_id", "=", issuerId)
      .where("serial", "=", serial)
      .where("revoked_at", "is", null)
      .execute();
  }

  async touch(id: string): Promise<void> {
    await this.db()
      .updateTable("fleet_device")
      .set({ last_seen: this.clock.now().getTime() })
      .where("id", "=", id)
      .execute();
  }
}

function toDevice(r: DeviceRow): Device {
  return {
    id: r.id,
    name: r.name,
    labels: JSON.parse(r.labels) as Record<string, string>,
    status: r.status,
    method: r.method,
    provisioner: r.provisioner,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastSeen: r.last_seen === null ? null : Number(r.last_seen),
  };
}

function toCert(r: CertRow): DeviceCertificate {
  return {
    issuerId: r.issuer_id,
    serial: r.serial,
    fingerprint: r.fingerprint,
    notBefore: Number(r.not_before),
    notAfter: Number(r.not_after),
    current: r.current === 1,
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    der: Buffer.from(r.der),
  };
}
