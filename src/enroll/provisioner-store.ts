import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { EnrollTables } from "./migrations.js";
import { parseProvisioner, type ProvisionerConfig } from "./provisioner-config.js";

/** Provisioners by name, stored as their normalized definition. */
export class ProvisionerStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private get db(): Kysely<EnrollTables> {
    return this.store.db.withTables<EnrollTables>();
  }

  async put(name: string, body: unknown): Promise<ProvisionerConfig> {
    const cfg = parseProvisioner(name, body);
    if (cfg.type === "x509") await this.checkManufacturers(cfg.manufacturers);
    const now = this.clock.now().getTime();
    const existing = await this.find(name);
    if (existing && existing.type !== cfg.type) {
      fail(
        "FR_PROVISIONER_INVALID",
        `provisioner "${name}" is of type ${existing.type}; delete it to change its type`,
      );
    }
    const row = { type: cfg.type, role: cfg.role, config: JSON.stringify(cfg), updated_at: now };
    if (existing) await this.db.updateTable("fleet_provisioner").set(row).where("name", "=", name).execute();
    else
      await this.db
        .insertInto("fleet_provisioner")
        .values({ name, created_at: now, ...row })
        .execute();
    return cfg;
  }

  /** An x509 provisioner's manufacturers are registered manufacturer CAs (fleet/manufacturers/:name). */
  private async checkManufacturers(names: readonly string[]): Promise<void> {
    const rows = await this.db
      .selectFrom("fleet_manufacturer")
      .select("name")
      .where("name", "in", [...names])
      .execute();
    const known = new Set(rows.map((r) => r.name));
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length)
      fail(
        "FR_PROVISIONER_INVALID",
        `manufacturers: no manufacturer CA registered as ${unknown.map((n) => JSON.stringify(n)).join(", ")}; register it first at fleet/manufacturers/:name`,
      );
  }

  async find(name: string): Promise<ProvisionerConfig | undefined> {
    const row = await this.db
      .selectFrom("fleet_provisioner")
      .select("config")
      .where("name", "=", name)
      .executeTakeFirst();
    return row ? (JSON.parse(row.config) as ProvisionerConfig) : undefined;
  }

  async get(name: string): Promise<ProvisionerConfig> {
    return (
      (await this.find(name)) ??
      fail("FR_PROVISIONER_NOT_FOUND", `no provisioner named "${name.slice(0, 64)}"`)
    );
  }

  async list(): Promise<string[]> {
    const rows = await this.db.selectFrom("fleet_provisioner").select("name").orderBy("name").execute();
    return rows.map((r) => r.name);
  }

  /** The x509 provisioners that name a manufacturer CA, in name order. */
  async usingManufacturer(manufacturer: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("fleet_provisioner")
      .select(["name", "config"])
      .where("type", "=", "x509")
      .orderBy("name")
      .execute();
    return rows
      .filter((r) => {
        const cfg = JSON.parse(r.config) as ProvisionerConfig;
        return cfg.type === "x509" && cfg.manufacturers.includes(manufacturer);
      })
      .map((r) => r.name);
  }

  async delete(name: string): Promise<void> {
    await this.db.deleteFrom("fleet_provisioner").where("name", "=", name).execute();
  }
}
