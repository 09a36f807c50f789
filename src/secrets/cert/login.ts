import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { fail } from "../../errors/index.js";
import type { CreatedToken, TokenStore } from "../../auth/index.js";
import type { RequestAuth } from "../../server/types.js";
import type { Clock } from "../../util/clock.js";
import { allowsClientAuth, globMatch, namesOf, parseBundle, verifyChain } from "./chain.js";
import type { CertCrls } from "./crls.js";
import type { CertRole, CertRoles } from "./roles.js";

/** Asks the PKI module whether it revoked a certificate it issued (undefined: not one of its certificates). */
export type RevocationCheck = (certDer: Buffer, issuerDer: Buffer) => Promise<boolean | undefined>;

/** Cert login is a login: its tokens have no parent, like Vault's. This stands for the auth method. */
const LOGIN_PARENT: RequestAuth = {
  tokenHash: "",
  accessor: "",
  policies: ["root"],
  displayName: "cert",
  entityMeta: {},
  root: true,
};

export interface LoginResult {
  readonly role: CertRole;
  readonly created: CreatedToken;
  readonly serial: string;
  readonly commonName: string;
}

/** The client certificate and the chain the client sent, from the TLS socket. */
export function peerChain(socket: unknown): { leaf: X509Certificate; rest: X509Certificate[] } {
  const s = socket as Partial<TLSSocket>;
  if (!s.encrypted || typeof s.getPeerCertificate !== "function")
    fail(
      "FR_LOGIN_FAILED",
      "no client certificate supplied: log in over TLS with a client certificate (mutual TLS)",
    );
  const peer = s.getPeerCertificate(true);
  if (!peer || !peer.raw) fail("FR_LOGIN_FAILED", "no client certificate supplied");
  const leaf = new X509Certificate(peer.raw);
  const rest: X509Certificate[] = [];
  let cur = peer.issuerCertificate;
  for (let i = 0; cur && cur.raw && i < 8 && cur !== cur.issuerCertificate; i++) {
    rest.push(new X509Certificate(cur.raw));
    cur = cur.issuerCertificate;
  }
  if (cur && cur.raw && cur === cur.issuerCertificate) rest.push(new X509Certificate(cur.raw));
  return { leaf, rest };
}

/**
 * Logs a client certificate in: a role (the named one, or the first that fits) whose CA the chain
 * reaches and whose name rules the certificate meets; no certificate of the chain revoked, by the PKI
 * module or by a configured CRL. Returns a new orphan token with the role's policies.
 */
export async function certLogin(
  deps: {
    roles: CertRoles;
    crls: CertCrls;
    tokens: TokenStore;
    clock: Clock;
    revocation?: RevocationCheck | undefined;
  },
  peer: { leaf: X509Certificate; rest: X509Certificate[] },
  roleName: string | undefined,
): Promise<LoginResult> {
  const now = deps.clock.now();
  const candidates = roleName
    ? [await deps.roles.get(roleName)].filter((r): r is CertRole => !!r)
    : await deps.roles.all();
  if (candidates.length === 0)
    fail("FR_LOGIN_FAILED", roleName ? `no cert role named "${roleName}"` : "no cert roles are configured");
  let reason = "invalid certificate or no client certificate supplied";
  for (const role of candidates) {
    const v = verifyChain(peer.leaf, peer.rest, parseBundle(role.certificate), now);
    if (!v.ok) {
      reason = v.reason;
      continue;
    }
    if (role.require_client_auth_eku && !allowsClientAuth(peer.leaf)) {
      reason = "the certificate's extended key usage does not allow client authentication";
      continue;
    }
    const why = nameMismatch(role, peer.leaf);
    if (why) {
      reason = why;
      continue;
    }
    // Revocation: every certificate of the chain below the anchor, against its own issuer.
    for (let i = 0; i + 1 < v.chain.length; i++) {
      const cert = v.chain[i]!;
      const issuer = v.chain[i + 1]!;
      const byPki = deps.revocation ? await deps.revocation(cert.raw, issuer.raw) : undefined;
      if (byPki === true || (await deps.crls.isRevoked(cert, issuer)))
        fail("FR_LOGIN_FAILED", `certificate ${cert.serialNumber.toLowerCase()} is revoked`);
    }
    const names = namesOf(peer.leaf);
    const created = await deps.tokens.create(
      LOGIN_PARENT,
      {
        // Never the parent's: an empty list would otherwise inherit LOGIN_PARENT's root policy.
        policies: role.token_policies.length ? role.token_policies : ["default"],
        ...(role.token_ttl ? { ttl: role.token_ttl } : {}),
        ...(role.token_max_ttl ? { explicitMaxTtl: role.token_max_ttl } : {}),
        ...(role.token_period ? { period: role.token_period } : {}),
        orphan: true,
        displayName: `cert-${role.display_name}`,
        meta: {
          cert_name: role.name,
          common_name: names.commonName,
          serial_number: peer.leaf.serialNumber.toLowerCase(),
        },
        path: "auth/cert/login",
      },
      true,
    );
    return { role, created, serial: peer.leaf.serialNumber.toLowerCase(), commonName: names.commonName };
  }
  fail("FR_LOGIN_FAILED", reason);
}

/** Which of the role's name rules the certificate fails, if any (each rule, when set, must match). */
function nameMismatch(role: CertRole, leaf: X509Certificate): string | undefined {
  const n = namesOf(leaf);
  const any = (patterns: string[], values: string[]) =>
    values.some((v) => patterns.some((p) => globMatch(p, v)));
  if (role.allowed_common_names.length && !any(role.allowed_common_names, [n.commonName]))
    return `common name "${n.commonName}" is not allowed by role ${role.name}`;
  if (role.allowed_dns_sans.length && !any(role.allowed_dns_sans, n.dns))
    return `no DNS SAN allowed by role ${role.name}`;
  if (role.allowed_uri_sans.length && !any(role.allowed_uri_sans, n.uri))
    return `no URI SAN allowed by role ${role.name}`;
  if (role.allowed_email_sans.length && !any(role.allowed_email_sans, n.email))
    return `no email SAN allowed by role ${role.name}`;
  if (
    role.allowed_organizational_units.length &&
    !any(role.allowed_organizational_units, n.organizationalUnits)
  )
    return `no organizational unit allowed by role ${role.name}`;
  return undefined;
}
