/**
 * PKI roles (Vault's role fields, plus Fleetroot's subject CN patterns and CA flag): what a certificate
 * issued under a role may contain. The definition is validated strictly on write; `normalizeRole` fills
 * defaults so stored roles always read back complete.
 */
import { z } from "zod";
import { EKU, type KeyUsage } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";
import { parseDuration } from "../util/duration.js";

/** Vault accepts lists as JSON arrays or comma-separated strings. */
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((v) =>
    (typeof v === "string" ? v.split(",") : v).map((s) => s.trim()).filter((s) => s.length > 0),
  );
const duration = z.union([z.string(), z.number()]);
const bool = z.union([z.boolean(), z.enum(["true", "false"])]).transform((v) => v === true || v === "true");

const roleInput = z.strictObject({
  issuer_ref: z.string().min(1).optional(),
  ttl: duration.optional(),
  max_ttl: duration.optional(),
  not_before_duration: duration.optional(),
  allowed_domains: list.optional(),
  allow_bare_domains: bool.optional(),
  allow_subdomains: bool.optional(),
  allow_glob_domains: bool.optional(),
  allow_localhost: bool.optional(),
  allow_any_name: bool.optional(),
  enforce_hostnames: bool.optional(),
  allow_ip_sans: bool.optional(),
  allowed_uri_sans: list.optional(),
  allowed_common_names: list.optional(),
  require_cn: bool.optional(),
  use_csr_common_name: bool.optional(),
  use_csr_sans: bool.optional(),
  key_type: z.enum(["ec", "rsa", "ed25519", "any"]).optional(),
  key_bits: z.number().int().min(0).optional(),
  key_usage: list.optional(),
  ext_key_usage: list.optional(),
  ext_key_usage_oids: list.optional(),
  server_flag: bool.optional(),
  client_flag: bool.optional(),
  code_signing_flag: bool.optional(),
  email_protection_flag: bool.optional(),
  allow_ca: bool.optional(),
  max_path_length: z.number().int().min(-1).optional(),
  organization: list.optional(),
  ou: list.optional(),
  country: list.optional(),
});

/** A complete role as stored and returned by `GET pki/roles/:name`. */
export interface Role {
  readonly issuer_ref: string;
  /** Seconds. */
  readonly ttl: number;
  readonly max_ttl: number;
  readonly not_before_duration: number;
  readonly allowed_domains: string[];
  readonly allow_bare_domains: boolean;
  readonly allow_subdomains: boolean;
  readonly allow_glob_domains: boolean;
  readonly allow_localhost: boolean;
  readonly allow_any_name: boolean;
  readonly enforce_hostnames: boolean;
  readonly allow_ip_sans: boolean;
  readonly allowed_uri_sans: string[];
  readonly allowed_common_names: string[];
  readonly require_cn: boolean;
  readonly use_csr_common_name: boolean;
  readonly use_csr_sans: boolean;
  readonly key_type: "ec" | "rsa" | "ed25519" | "any";
  readonly key_bits: number;
  readonly key_usage: string[];
  readonly ext_key_usage: string[];
  readonly ext_key_usage_oids: string[];
  readonly server_flag: boolean;
  readonly client_flag: boolean;
  readonly code_signing_flag: boolean;
  readonly email_protection_flag: boolean;
  readonly allow_ca: boolean;
  readonly max_path_length: number;
  readonly organization: string[];
  readonly ou: string[];
  readonly country: string[];
}

const DEFAULT_TTL = 72 * 3600;
const DEFAULT_MAX_TTL = 30 * 24 * 3600;

/** Key usage names as Vault writes them (DigitalSignature) and as RFC 5280 does (digitalSignature). */
const keyUsageNames: Record<string, KeyUsage> = {
  digitalsignature: "digitalSignature",
  contentcommitment: "nonRepudiation",
  nonrepudiation: "nonRepudiation",
  keyencipherment: "keyEncipherment",
  dataencipherment: "dataEncipherment",
  keyagreement: "keyAgreement",
  certsign: "keyCertSign",
  keycertsign: "keyCertSign",
  crlsign: "cRLSign",
  encipheronly: "encipherOnly",
  decipheronly: "decipherOnly",
};

const ekuNames: Record<string, string> = Object.fromEntries(
  Object.entries(EKU).map(([name, oid]) => [name.toLowerCase(), oid]),
);

export function keyUsageOf(name: string): KeyUsage {
  const ku = keyUsageNames[name.toLowerCase()];
  if (!ku) {
    throw new FleetError(
      "FR_PKI_ROLE_INVALID",
      `unknown key usage "${name}"; use DigitalSignature, KeyAgreement, KeyEncipherment, ContentCommitment or DataEncipherment`,
    );
  }
  return ku;
}

function ekuOidOf(name: string): string {
  const oid = ekuNames[name.toLowerCase()] ?? (/^\d+(\.\d+)+$/.test(name) ? name : undefined);
  if (!oid) {
    throw new FleetError(
      "FR_PKI_ROLE_INVALID",
      `unknown extended key usage "${name}"; use ServerAuth, ClientAuth, CodeSigning, EmailProtection, TimeStamping, OCSPSigning or a dotted OID`,
    );
  }
  return oid;
}

/** Validates a role body (JSON from the API) and fills in defaults. `current` keeps unspecified fields. */
export function parseRole(body: unknown, current?: Role): Role {
  const r = roleInput.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "the role";
    throw new FleetError("FR_PKI_ROLE_INVALID", `${where}: ${issue?.message ?? "invalid"}`);
  }
  const i = r.data;
  const dur = (v: string | number | undefined, field: string, dflt: number) =>
    v === undefined ? dflt : parseDuration(v, field);
  const role: Role = {
    issuer_ref: i.issuer_ref ?? current?.issuer_ref ?? "default",
    ttl: dur(i.ttl, "ttl", current?.ttl ?? DEFAULT_TTL),
    max_ttl: dur(i.max_ttl, "max_ttl", current?.max_ttl ?? DEFAULT_MAX_TTL),
    not_before_duration: dur(
      i.not_before_duration,
      "not_before_duration",
      current?.not_before_duration ?? 30,
    ),
    allowed_domains: i.allowed_domains ?? current?.allowed_domains ?? [],
    allow_bare_domains: i.allow_bare_domains ?? current?.allow_bare_domains ?? false,
    allow_subdomains: i.allow_subdomains ?? current?.allow_subdomains ?? false,
    allow_glob_domains: i.allow_glob_domains ?? current?.allow_glob_domains ?? false,
    allow_localhost: i.allow_localhost ?? current?.allow_localhost ?? true,
    allow_any_name: i.allow_any_name ?? current?.allow_any_name ?? false,
    enforce_hostnames: i.enforce_hostnames ?? current?.enforce_hostnames ?? true,
    allow_ip_sans: i.allow_ip_sans ?? current?.allow_ip_sans ?? true,
    allowed_uri_sans: i.allowed_uri_sans ?? current?.allowed_uri_sans ?? [],
    allowed_common_names: i.allowed_common_names ?? current?.allowed_common_names ?? [],
    require_cn: i.require_cn ?? current?.require_cn ?? true,
    use_csr_common_name: i.use_csr_common_name ?? current?.use_csr_common_name ?? true,
    use_csr_sans: i.use_csr_sans ?? current?.use_csr_sans ?? true,
    key_type: i.key_type ?? current?.key_type ?? "ec",
    key_bits: i.key_bits ?? current?.key_bits ?? 0,
    key_usage: i.key_usage ?? current?.key_usage ?? ["DigitalSignature"],
    ext_key_usage: i.ext_key_usage ?? current?.ext_key_usage ?? [],
    ext_key_usage_oids: i.ext_key_usage_oids ?? current?.ext_key_usage_oids ?? [],
    server_flag: i.server_flag ?? current?.server_flag ?? true,
    client_flag: i.client_flag ?? current?.client_flag ?? true,
    code_signing_flag: i.code_signing_flag ?? current?.code_signing_flag ?? false,
    email_protection_flag: i.email_protection_flag ?? current?.email_protection_flag ?? false,
    allow_ca: i.allow_ca ?? current?.allow_ca ?? false,
    max_path_length: i.max_path_length ?? current?.max_path_length ?? -1,
    organization: i.organization ?? current?.organization ?? [],
    ou: i.ou ?? current?.ou ?? [],
    country: i.country ?? current?.country ?? [],
  };
  checkRole(role);
  return role;
}

function checkRole(role: Role): void {
  if (role.max_ttl > 0 && role.ttl > role.max_ttl)
    throw new FleetError("FR_PKI_ROLE_INVALID", "ttl must not exceed max_ttl");
  if (role.key_type === "rsa" && role.key_bits !== 0 && role.key_bits < 2048)
    throw new FleetError("FR_PKI_ROLE_INVALID", "key_bits for RSA must be at least 2048");
  if (role.key_type === "ec" && ![0, 256, 384, 521].includes(role.key_bits))
    throw new FleetError("FR_PKI_ROLE_INVALID", "key_bits for EC must be 0 (any), 256, 384 or 521");
  const usages = role.key_usage.map(keyUsageOf);
  if (usages.includes("keyCertSign") && !role.allow_ca)
    throw new FleetError("FR_PKI_ROLE_INVALID", "CertSign key usage needs allow_ca");
  role.ext_key_usage.forEach(ekuOidOf);
  role.ext_key_usage_oids.forEach(ekuOidOf);
  for (const c of role.country)
    if (!/^[A-Z]{2}$/.test(c))
      throw new FleetError("FR_PKI_ROLE_INVALID", `country "${c}" is not a two-letter code`);
}

/** The key usages a role grants (RFC 5280 names). A CA role always gets keyCertSign and cRLSign. */
export function roleKeyUsages(role: Role, ca: boolean): KeyUsage[] {
  const out = new Set(role.key_usage.map(keyUsageOf));
  if (ca) {
    out.add("keyCertSign");
    out.add("cRLSign");
  } else {
    out.delete("keyCertSign");
    out.delete("cRLSign");
  }
  return [...out];
}

/** The extended key usage OIDs a role grants: the flags, then ext_key_usage and ext_key_usage_oids. */
export function roleExtKeyUsages(role: Role): string[] {
  const out = new Set<string>();
  if (role.server_flag) out.add(EKU.serverAuth as string);
  if (role.client_flag) out.add(EKU.clientAuth as string);
  if (role.code_signing_flag) out.add(EKU.codeSigning as string);
  if (role.email_protection_flag) out.add(EKU.emailProtection as string);
  for (const n of [...role.ext_key_usage, ...role.ext_key_usage_oids]) out.add(ekuOidOf(n));
  return [...out];
}
