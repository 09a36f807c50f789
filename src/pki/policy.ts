/**
 * Role enforcement: turns what a request asks for (from a CSR or an issue body) into what the certificate
 * gets, or refuses with FR_PKI_ROLE_DENIED naming the offending field. Only checked fields are granted:
 * the subject carries the CN and the role's O/OU/C, never other CSR subject attributes, and requested
 * extensions other than SAN, basicConstraints, keyUsage and extKeyUsage are ignored.
 */
import { isIP } from "node:net";
import type { CsrKey, DnAttribute, KeyUsage, SanSpec } from "../crypto/index.js";
import { EKU } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";
import { type Role, roleExtKeyUsages, roleKeyUsages } from "./role.js";

export interface NameRequest {
  readonly commonName: string | undefined;
  readonly dns: readonly string[];
  readonly uri: readonly string[];
  readonly ip: readonly string[];
  readonly email: readonly string[];
}

export interface ProfileRequest {
  /** Requested TTL in seconds (0 = the role's). */
  readonly ttl: number;
  readonly key: CsrKey;
  readonly ca?: { readonly pathLen?: number } | undefined;
  readonly keyUsage?: readonly KeyUsage[] | undefined;
  /** Requested extKeyUsage OIDs. */
  readonly extKeyUsage?: readonly string[] | undefined;
}

export interface Grant {
  readonly subject: DnAttribute[];
  readonly san: SanSpec;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyUsage: KeyUsage[];
  readonly extKeyUsage: string[];
  readonly ca: { pathLen?: number } | undefined;
  readonly warnings: string[];
}

const deny = (roleName: string, what: string): never => {
  throw new FleetError("FR_PKI_ROLE_DENIED", `${what} (role "${roleName}")`);
};

/** `*` matches any run of characters; everything else literally. */
export function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes("*")) return pattern === value;
  const re = new RegExp(
    "^" +
      pattern
        .split("*")
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*") +
      "$",
  );
  return re.test(value);
}

const HOSTNAME =
  /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const isHostname = (name: string): boolean => name.length <= 253 && HOSTNAME.test(name);

/** Vault's domain rules: bare, subdomains, globs, localhost, any. */
export function dnsAllowed(role: Role, name: string): boolean {
  const lower = name.toLowerCase();
  if (role.enforce_hostnames && !isHostname(lower)) return false;
  if (role.allow_any_name) return true;
  if (role.allow_localhost && (lower === "localhost" || lower === "localdomain")) return true;
  for (const raw of role.allowed_domains) {
    const d = raw.toLowerCase();
    if (role.allow_bare_domains && lower === d) return true;
    if (role.allow_subdomains && !d.includes("*") && lower.endsWith("." + d)) return true;
    if (role.allow_glob_domains && d.includes("*") && globMatch(d, lower)) return true;
  }
  return false;
}

function commonNameAllowed(role: Role, cn: string): boolean {
  if (role.allow_any_name) return true;
  if (role.allowed_common_names.some((p) => globMatch(p, cn))) return true;
  return dnsAllowed(role, cn);
}

function checkKey(role: Role, key: CsrKey): void {
  const shown =
    key.type === "ec" ? `EC ${key.curve}` : key.bits ? `${key.type.toUpperCase()} ${key.bits}` : key.type;
  const isRsa = key.type === "rsa" || key.type === "rsa-pss";
  if (isRsa && (key.bits ?? 0) < 2048)
    throw new FleetError(
      "FR_PKI_ROLE_DENIED",
      `an RSA key of ${key.bits ?? 0} bits is too small; use 2048 or more`,
    );
  switch (role.key_type) {
    case "any":
      return;
    case "ec": {
      if (key.type !== "ec") throw denyKey(shown, "EC");
      const want = role.key_bits ? `P-${role.key_bits}` : undefined;
      if (want && key.curve !== want) throw denyKey(shown, want);
      return;
    }
    case "rsa":
      if (!isRsa) throw denyKey(shown, "RSA");
      if ((key.bits ?? 0) < Math.max(2048, role.key_bits))
        throw denyKey(shown, `RSA of at least ${role.key_bits} bits`);
      return;
    case "ed25519":
      if (key.type !== "ed25519") throw denyKey(shown, "Ed25519");
      return;
  }
}

const denyKey = (got: string, want: string) =>
  new FleetError("FR_PKI_ROLE_DENIED", `the key is ${got}; the role allows only ${want} keys`);

const ekuName = new Map(Object.entries(EKU).map(([n, o]) => [o, n]));

/**
 * Applies `role` to a request; `roleName` for messages, `now` from the Clock, `issuerNotAfter` caps the
 * validity so no certificate outlives its issuer.
 */
export function applyRole(
  roleName: string,
  role: Role,
  names: NameRequest,
  profile: ProfileRequest,
  now: number,
  issuerNotAfter: number,
): Grant {
  const warnings: string[] = [];
  checkKey(role, profile.key);

  // Names: the CN and every SAN must be allowed.
  const cn = names.commonName?.trim() || undefined;
  if (!cn && role.require_cn) deny(roleName, "common_name is required");
  if (cn && !commonNameAllowed(role, cn)) deny(roleName, `common name "${cn}" is not allowed`);
  const dns = new Set(names.dns.map((d) => d.toLowerCase()));
  for (const d of dns) if (!dnsAllowed(role, d)) deny(roleName, `DNS name "${d}" is not allowed`);
  // Like Vault, a hostname CN also goes into the DNS SANs (clients match SANs, not the CN).
  if (cn && isHostname(cn) && dnsAllowed(role, cn)) dns.add(cn.toLowerCase());
  for (const u of names.uri) {
    if (!role.allow_any_name && !role.allowed_uri_sans.some((p) => globMatch(p, u)))
      deny(roleName, `URI SAN "${u}" is not allowed`);
  }
  for (const ip of names.ip) {
    if (!isIP(ip)) deny(roleName, `"${ip}" is not an IP address`);
    if (!role.allow_ip_sans) deny(roleName, `IP SAN ${ip} is not allowed (allow_ip_sans is false)`);
  }
  for (const e of names.email) {
    const domain = e.slice(e.lastIndexOf("@") + 1);
    if (!role.allow_any_name && !dnsAllowed(role, domain)) deny(roleName, `email SAN "${e}" is not allowed`);
  }

  // Validity: a TTL beyond max_ttl is refused, not silently shortened.
  const ttl = profile.ttl || Math.min(role.ttl, role.max_ttl || role.ttl);
  if (role.max_ttl && ttl > role.max_ttl)
    deny(roleName, `ttl ${ttl}s exceeds the role's max_ttl of ${role.max_ttl}s`);
  let notAfter = now + ttl * 1000;
  if (notAfter > issuerNotAfter) {
    notAfter = issuerNotAfter;
    warnings.push("the TTL was shortened to the issuer's expiry");
  }
  const notBefore = now - role.not_before_duration * 1000;

  // Basic constraints.
  let ca: Grant["ca"];
  if (profile.ca) {
    if (!role.allow_ca)
      deny(
        roleName,
        "the request asks for a CA certificate (basicConstraints cA) but the role does not allow CA certificates",
      );
    const roleMax = role.max_path_length >= 0 ? role.max_path_length : undefined;
    const asked = profile.ca.pathLen;
    if (roleMax !== undefined && asked !== undefined && asked > roleMax)
      deny(roleName, `pathLen ${asked} exceeds the role's max_path_length ${roleMax}`);
    const pathLen = asked ?? roleMax;
    ca = pathLen === undefined ? {} : { pathLen };
  }

  // Usages: what was asked must be within the role; the certificate gets what was asked (or the role's).
  const roleKu = roleKeyUsages(role, !!ca);
  let keyUsage = roleKu;
  if (profile.keyUsage?.length) {
    const wanted = profile.keyUsage.filter((u) => !(ca && (u === "keyCertSign" || u === "cRLSign")));
    for (const u of wanted) if (!roleKu.includes(u)) deny(roleName, `key usage ${u} is not allowed`);
    keyUsage = ca ? [...new Set([...wanted, "keyCertSign", "cRLSign"] as KeyUsage[])] : wanted;
    if (keyUsage.length === 0) keyUsage = roleKu;
  }
  const roleEku = roleExtKeyUsages(role);
  let extKeyUsage = roleEku;
  if (profile.extKeyUsage?.length) {
    for (const o of profile.extKeyUsage)
      if (!roleEku.includes(o)) deny(roleName, `extended key usage ${ekuName.get(o) ?? o} is not allowed`);
    extKeyUsage = [...profile.extKeyUsage];
  }

  const subject: DnAttribute[] = [
    ...role.country.map((value) => ({ type: "C", value })),
    ...role.organization.map((value) => ({ type: "O", value })),
    ...role.ou.map((value) => ({ type: "OU", value })),
  ];
  if (cn) subject.push({ type: "CN", value: cn });
  const san: SanSpec = {
    ...(dns.size ? { dns: [...dns] } : {}),
    ...(names.uri.length ? { uri: [...new Set(names.uri)] } : {}),
    ...(names.ip.length ? { ip: [...new Set(names.ip)] } : {}),
    ...(names.email.length ? { email: [...new Set(names.email)] } : {}),
  };
  if (subject.length === 0 && Object.keys(san).length === 0)
    deny(roleName, "the certificate would have neither a subject nor a subject alternative name");
  return {
    subject,
    san,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    keyUsage,
    extKeyUsage,
    ca,
    warnings,
  };
}
