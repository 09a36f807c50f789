/**
 * Role storage in `pki_role` (JSON config). Reads are cached for a few seconds: issuance looks its role up
 * on every request, and a role change on another node is seen within that time.
 */
import { FleetError } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { PkiTables } from "./migrations.js";
import { type Role, parseRole } from "./role.js";

const CACHE_MS = 5000;

export class RoleStore {
  private cache = new Map<string, { role: Role; at: number }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private get t() {
    return this.store.db.withTables<PkiTables>();
  }

  static checkName(name: string): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name))
      throw new FleetError("FR_VALIDATION", `role name "${name}" must be letters, digits, ".", "_" or "-"`);
  }

  async get(name: string): Promise<Role> {
    const now = this.clock.now().getTime();
    const hit = this.cache.get(name);
    if (hit && now - hit.at < CACHE_MS) return hit.role;
    const row = await this.t
      .selectFrom("pki_role")
      .select("config")
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row)
      throw new FleetError(
        "FR_PKI_ROLE_NOT_FOUND",
        `no role "${name}"; create it with \`fleetroot ca role write ${name} …\` (API: POST pki/roles/${name})`,
      );
    const role = JSON.parse(row.config) as Role;
    this.cache.set(name, { role, at: now });
    return role;
  }

  /** Creates or updates a role; fields not given keep their current value (Vault's write semantics). */
  async put(name: string, body: Record<string, unknown>): Promise<Role> {
    RoleStore.checkName(name);
    const current = await this.get(name).catch(() => undefined);
    const role = parseRole(body, current);
    if (role.issuer_ref !== "default" && role.issuer_ref !== current?.issuer_ref)
      await this.checkIssuerRef(role.issuer_ref);
    const config = JSON.stringify(role);
    const now = this.clock.now().getTime();
    await this.t
      .insertInto("pki_role")
      .values({ name, config, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ config, updated_at: now }))
      .execute();
    this.cache.delete(name);
    return role;
  }

  /**
   * A named issuer must exist when the role is written, not only when it first issues. "default" is
   * resolved at issue time (it may be written before any issuer exists, and follows the default).
   * A pending intermediate counts: the role works once its certificate is set.
   */
  private async checkIssuerRef(ref: string): Promise<void> {
    const hit = await this.t
      .selectFrom("pki_issuer")
      .select("id")
      .where((eb) => eb.or([eb("id", "=", ref), eb("name", "=", ref)]))
      .executeTakeFirst();
    if (!hit)
      throw new FleetError(
        "FR_PKI_ROLE_INVALID",
        `issuer_ref: no issuer "${ref.slice(0, 128)}" (give an issuer id, name or "default")`,
      );
  }

  async list(): Promise<string[]> {
    const rows = await this.t.selectFrom("pki_role").select("name").orderBy("name").execute();
    return rows.map((r) => r.name);
  }

  async delete(name: string): Promise<void> {
    await this.t.deleteFrom("pki_role").where("name", "=", name).execute();
    this.cache.delete(name);
  }
}
