import type { X509Certificate } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../../errors/index.js";
import type { Store } from "../../store/index.js";
import type { Clock } from "../../util/clock.js";
import { optBool, optDuration } from "../kv/body.js";
import type { SecretsTables } from "../migrations.js";
import { parseBundle } from "./chain.js";

/** A cert auth role ("certs/:name" in Vault): which CA, which names, which token. */
export interface CertRole {
  readonly name: string;
  /** PEM bundle of trusted CA (or pinned leaf) certificates. */
  readonly certificate: string;
  readonly allowed_common_names: string[];
  readonly allowed_dns_sans: string[];
  readonly allowed_uri_sans: string[];
  readonly allowed_email_sans: string[];
  readonly allowed_organizational_units: string[];
  readonly token_policies: string[];
  readonly token_ttl: number;
  readonly token_max_ttl: number;
  readonly token_period: number;
  readonly display_name: string;
  readonly require_client_auth_eku: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,127}$/;
const MAX_LIST = 64;
const MAX_PEM = 64 * 1024;

export function checkRoleName(name: string): string {
  if (!NAME_RE.test(name))
    fail(
      "FR_VALIDATION",
      "a cert role name is 1–128 letters, digits, _ . @ - (starting with a letter or digit)",
    );
  return name;
}

/** Cert roles in secrets_cert_role (plain JSON: certificates and rules are public). */
export class CertRoles {
  private readonly db: Kysely<SecretsTables>;

  constructor(
    store: Store,
    private readonly clock: Clock,
  ) {
    this.db = store.db.withTables<SecretsTables>();
  }

  async get(name: string): Promise<CertRole | undefined> {
    const row = await this.db
      .selectFrom("secrets_cert_role")
      .select("config")
      .where("name", "=", name)
      .executeTakeFirst();
    return row ? (JSON.parse(row.config) as CertRole) : undefined;
  }

  async all(): Promise<CertRole[]> {
    const rows = await this.db.selectFrom("secrets_cert_role").select("config").orderBy("name").execute();
    return rows.map((r) => JSON.parse(r.config) as CertRole);
  }

  async names(): Promise<string[]> {
    return (await this.db.selectFrom("secrets_cert_role").select("name").orderBy("name").execute()).map(
      (r) => r.name,
    );
  }

  async put(role: CertRole): Promise<void> {
    const config = JSON.stringify(role);
    const now = this.clock.now().getTime();
    await this.db
      .insertInto("secrets_cert_role")
      .values({ name: role.name, config, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ config, updated_at: now }))
      .execute();
  }

  async delete(name: string): Promise<void> {
    await this.db.deleteFrom("secrets_cert_role").where("name", "=", name).execute();
  }
}

/** A role from a request body (Vault's field names, including the older `policies`, `ttl`, `allowed_names`). */
export function roleFromBody(
  name: string,
  b: Readonly<Record<string, unknown>>,
  existing?: CertRole,
): CertRole {
  const pem = b.certificate ?? existing?.certificate;
  if (typeof pem !== "string" || !pem.includes("BEGIN CERTIFICATE"))
    fail("FR_VALIDATION", "certificate is required: the PEM of the CA that issues the client certificates");
  if (pem.length > MAX_PEM) fail("FR_VALIDATION", `certificate is larger than ${MAX_PEM} characters`);
  let certs: X509Certificate[];
  try {
    certs = parseBundle(pem);
  } catch (e) {
    fail("FR_PEM_INVALID", `certificate: ${(e as Error).message}`);
  }
  if (certs.length === 0) fail("FR_PEM_INVALID", "certificate holds no PEM certificate");
  const list = (k: string, alt?: string): string[] => {
    const v = b[k] ?? (alt ? b[alt] : undefined);
    if (v === undefined || v === null) return (existing?.[k as keyof CertRole] as string[] | undefined) ?? [];
    const items = typeof v === "string" ? v.split(",") : v;
    if (
      !Array.isArray(items) ||
      !items.every((i) => typeof i === "string" && i.length <= 256) ||
      items.length > MAX_LIST
    )
      fail("FR_VALIDATION", `${k} must be a list of at most ${MAX_LIST} strings`);
    return (items as string[]).map((i) => i.trim()).filter(Boolean);
  };
  const dur = (k: string, alt: string, prev: number | undefined) =>
    optDuration(b[k] ?? b[alt], k) ?? prev ?? 0;
  const policies = list("token_policies", "policies").map((p) => p.toLowerCase());
  if (policies.includes("root")) fail("FR_VALIDATION", "a cert role cannot grant the root policy");
  const ttl = dur("token_ttl", "ttl", existing?.token_ttl);
  const maxTtl = dur("token_max_ttl", "max_ttl", existing?.token_max_ttl);
  // As Vault's token fields: a role may not promise a TTL its own max would cut short.
  if (maxTtl > 0 && ttl > maxTtl) fail("FR_VALIDATION", '"token_ttl" cannot be greater than "token_max_ttl"');
  return {
    name,
    certificate: pem,
    allowed_common_names: list("allowed_common_names", "allowed_names"),
    allowed_dns_sans: list("allowed_dns_sans"),
    allowed_uri_sans: list("allowed_uri_sans"),
    allowed_email_sans: list("allowed_email_sans"),
    allowed_organizational_units: list("allowed_organizational_units"),
    token_policies: policies,
    token_ttl: ttl,
    token_max_ttl: maxTtl,
    token_period: dur("token_period", "period", existing?.token_period),
    display_name:
      typeof b.display_name === "string" ? b.display_name.slice(0, 128) : (existing?.display_name ?? name),
    require_client_auth_eku:
      optBool(b.require_client_auth_eku, "require_client_auth_eku") ??
      existing?.require_client_auth_eku ??
      true,
  };
}

/** The role as GET certs/:name answers it. */
export function roleBody(r: CertRole): Record<string, unknown> {
  return {
    certificate: r.certificate,
    allowed_common_names: r.allowed_common_names,
    allowed_dns_sans: r.allowed_dns_sans,
    allowed_uri_sans: r.allowed_uri_sans,
    allowed_email_sans: r.allowed_email_sans,
    allowed_organizational_units: r.allowed_organizational_units,
    token_policies: r.token_policies,
    policies: r.token_policies,
    token_ttl: r.token_ttl,
    token_max_ttl: r.token_max_ttl,
    token_period: r.token_period,
    display_name: r.display_name,
    require_client_auth_eku: r.require_client_auth_eku,
  };
}
