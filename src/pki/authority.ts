/**
 * The authority: the one place that signs end-entity certificates. `sign` takes a CSR (its signature is
 * verified, then the role decides what is granted); `issue` generates the key pair server-side and returns
 * the private key once. Every certificate is stored before it is returned; `revoke` marks it revoked,
 * appends it to the CRL state and drops its cached OCSP responses.
 */
import { type KeyObject, generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import {
  type CrlReason,
  type CsrKey,
  type ParsedCsr,
  crlReasons,
  randomSerial,
  serialHex,
} from "../crypto/index.js";
import type { CsrVerifier } from "../crypto/csr-pool.js";
import { FleetError, isFleetError } from "../errors/index.js";
import type { Clock } from "../util/clock.js";
import type { CertStore } from "./cert-store.js";
import type { CrlService } from "./crl.js";
import { optDuration, optList, optString } from "./format.js";
import type { Issuer, IssuerRegistry } from "./issuers.js";
import { type NameRequest, type ProfileRequest, applyRole } from "./policy.js";
import type { Role } from "./role.js";
import type { RoleStore } from "./roles.js";
import type { OcspResponder } from "./responder.js";

const generateKeyPairAsync = promisify(generateKeyPair);

export interface Issued {
  readonly der: Buffer;
  readonly issuer: Issuer;
  readonly serial: string;
  readonly notAfter: number;
  readonly warnings: string[];
  readonly privateKey?: string;
  readonly privateKeyType?: string;
}

export interface AuthorityDeps {
  readonly issuers: IssuerRegistry;
  readonly certs: CertStore;
  readonly roles: RoleStore;
  readonly crl: CrlService;
  readonly ocsp: OcspResponder;
  readonly clock: Clock;
  readonly maxCsrBytes: number;
  /** Parses and verifies CSRs, on worker threads when there are spare cores. */
  readonly csrs: CsrVerifier;
}

export class Authority {
  constructor(private readonly d: AuthorityDeps) {}

  /** Stops the CSR threads. */
  close(): Promise<void> {
    return this.d.csrs.close();
  }

  /**
   * Parses a PEM CSR and checks its self-signature (on the CSR threads when there are spare cores).
   * Missing → FR_VALIDATION; malformed or too large → FR_CSR_INVALID; bad signature → FR_CSR_SIGNATURE.
   */
  verifyCsr(input: unknown, maxBytes: number = this.d.maxCsrBytes): Promise<ParsedCsr> {
    if (typeof input !== "string" || input.length === 0)
      return Promise.reject(
        new FleetError("FR_VALIDATION", "csr is required: a PEM certificate signing request"),
      );
    if (input.length > maxBytes * 2)
      return Promise.reject(
        new FleetError("FR_CSR_INVALID", `the CSR is larger than the ${maxBytes}-byte limit`),
      );
    return this.d.csrs.parseAndVerify(input, maxBytes);
  }

  /**
   * Signs a CSR under a role. Bad CSR → FR_CSR_*; outside the role → FR_PKI_ROLE_DENIED; nothing stored then.
   * `verified`: the CSR as verifyCsr returned it, when the caller checked it already (body.csr is then not read).
   */
  async sign(
    roleName: string,
    body: Record<string, unknown>,
    requester: string | undefined,
    verified?: ParsedCsr,
  ): Promise<Issued> {
    const role = await this.d.roles.get(roleName);
    const csr = verified ?? (await this.verifyCsr(body.csr));
    const csrCn = csr.subject.attributes.find((a) => a.type === "CN")?.value;
    const names: NameRequest = {
      commonName: (role.use_csr_common_name ? csrCn : undefined) ?? optString(body, "common_name"),
      ...mergeSans(role.use_csr_sans ? csr.san : { dns: [], uri: [], ip: [], email: [] }, body),
    };
    const profile: ProfileRequest = {
      ttl: optDuration(body, "ttl"),
      key: csr.key,
      ca: csr.requested.ca,
      keyUsage: csr.requested.keyUsage,
      extKeyUsage: csr.requested.extKeyUsage,
    };
    return this.signAs(roleName, role, names, profile, csr.publicKey, requester);
  }

  /** Generates a key pair per the role and issues for it; the private key is returned, never stored. */
  async issue(
    roleName: string,
    body: Record<string, unknown>,
    requester: string | undefined,
  ): Promise<Issued> {
    const role = await this.d.roles.get(roleName);
    const names: NameRequest = {
      commonName: optString(body, "common_name"),
      ...mergeSans({ dns: [], uri: [], ip: [], email: [] }, body),
    };
    const { key, generate } = keyForRole(role);
    // Check the request against the role before paying for key generation.
    const profile: ProfileRequest = {
      ttl: optDuration(body, "ttl"),
      key,
    };
    applyRole(roleName, role, names, profile, this.d.clock.now().getTime(), Infinity);
    const pair = await generate();
    const spki = pair.publicKey.export({ format: "der", type: "spki" });
    const issued = await this.signAs(roleName, role, names, profile, spki, requester);
    return {
      ...issued,
      privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      privateKeyType: key.type,
    };
  }

  private async signAs(
    roleName: string,
    role: Role,
    names: NameRequest,
    profile: ProfileRequest,
    publicKey: Uint8Array,
    requester: string | undefined,
  ): Promise<Issued> {
    const issuer = this.d.issuers.resolve(role.issuer_ref);
    const now = this.d.clock.now().getTime();
    const grant = applyRole(roleName, role, names, profile, now, issuer.notAfter);
    const subjectText = grant.subject.map((a) => `${a.type}=${a.value}`).join(",");
    for (let attempt = 0; ; attempt++) {
      const serialBytes = randomSerial();
      const der = await issuer.template.issue({
        serial: serialBytes,
        subject: grant.subject,
        notBefore: grant.notBefore,
        notAfter: grant.notAfter,
        publicKey,
        ...(grant.ca ? { ca: grant.ca } : {}),
        keyUsage: grant.keyUsage,
        ...(grant.extKeyUsage.length ? { extKeyUsage: grant.extKeyUsage } : {}),
        san: grant.san,
      });
      const serial = serialHex(serialBytes);
      try {
        await this.d.certs.insert({
          issuer_id: issuer.id,
          serial,
          subject: subjectText,
          sans: JSON.stringify(grant.san),
          not_before: grant.notBefore.getTime(),
          not_after: grant.notAfter.getTime(),
          role: roleName,
          requester: requester ?? null,
          der,
          created_at: now,
          revoked_at: null,
          revocation_reason: null,
        });
      } catch (e) {
        // A random 127-bit serial repeating is vanishingly rare; draw another rather than fail.
        if (isFleetError(e) && e.code === "FR_CONFLICT" && attempt < 3) continue;
        throw e;
      }
      return { der, issuer, serial, notAfter: grant.notAfter.getTime(), warnings: grant.warnings };
    }
  }

  /**
   * Revokes by serial (any issuer holding it, or `issuerRef`). Idempotent: revoking again returns the first
   * revocation's time and reason. The revocation is in the delta CRL and OCSP at once.
   */
  async revoke(
    serial: string,
    reasonInput: unknown,
    issuerRef?: string,
  ): Promise<{ serial: string; issuer: Issuer; revokedAt: number; reason: CrlReason; changed: boolean }> {
    const reason = parseReason(reasonInput);
    const issuerId = issuerRef ? this.d.issuers.resolve(issuerRef).id : undefined;
    const row = await this.d.certs.get(serial, issuerId);
    if (!row) throw new FleetError("FR_PKI_CERT_NOT_FOUND", `no certificate with serial ${serial}`);
    const issuer = this.d.issuers.resolve(row.issuer_id);
    const now = this.d.clock.now().getTime();
    const r = await this.d.crl.revoke(row.issuer_id, serial, () =>
      this.d.certs.revoke(row.issuer_id, serial, now, crlReasons[reason]),
    );
    this.d.ocsp.invalidate(serial);
    const stored =
      (Object.keys(crlReasons) as CrlReason[]).find((k) => crlReasons[k] === r.reason) ?? "unspecified";
    return { serial, issuer, revokedAt: r.revokedAt, reason: stored, changed: r.changed };
  }
}

function parseReason(input: unknown): CrlReason {
  if (input === undefined || input === null || input === "") return "unspecified";
  if (typeof input === "number") {
    const name = (Object.keys(crlReasons) as CrlReason[]).find((k) => crlReasons[k] === input);
    if (name) return checkReason(name);
  }
  if (typeof input === "string") {
    const name = (Object.keys(crlReasons) as CrlReason[]).find(
      (k) => k.toLowerCase() === input.toLowerCase(),
    );
    if (name) return checkReason(name);
  }
  throw new FleetError(
    "FR_VALIDATION",
    `reason "${String(input)}" is not an RFC 5280 CRLReason; use one of ${Object.keys(crlReasons)
      .filter((k) => k !== "removeFromCRL")
      .join(", ")}`,
  );
}

function checkReason(r: CrlReason): CrlReason {
  // removeFromCRL only exists in delta CRLs to undo a hold (5.3.1); it is not a reason to revoke.
  if (r === "removeFromCRL")
    throw new FleetError("FR_VALIDATION", "removeFromCRL is not a revocation reason");
  return r;
}

/** Body SANs (alt_names DNS or email, uri_sans, ip_sans) added to what the CSR asked for. */
function mergeSans(
  base: { dns: readonly string[]; uri: readonly string[]; ip: readonly string[]; email: readonly string[] },
  body: Record<string, unknown>,
): Omit<NameRequest, "commonName"> {
  const alt = optList(body, "alt_names");
  return {
    dns: [...base.dns, ...alt.filter((a) => !a.includes("@"))],
    email: [...base.email, ...alt.filter((a) => a.includes("@"))],
    uri: [...base.uri, ...optList(body, "uri_sans")],
    ip: [...base.ip, ...optList(body, "ip_sans")],
  };
}

type Pair = { publicKey: KeyObject; privateKey: KeyObject };

function keyForRole(role: Role): { key: CsrKey; generate: () => Promise<Pair> } {
  switch (role.key_type) {
    case "rsa": {
      const bits = Math.max(2048, role.key_bits || 2048);
      return {
        key: { type: "rsa", bits },
        generate: () => generateKeyPairAsync("rsa", { modulusLength: bits }),
      };
    }
    case "ed25519":
      return { key: { type: "ed25519" }, generate: () => generateKeyPairAsync("ed25519") };
    default: {
      const bits = role.key_type === "ec" && role.key_bits ? role.key_bits : 256;
      const curve = `P-${bits}` as "P-256" | "P-384" | "P-521";
      return {
        key: { type: "ec", curve },
        generate: () => generateKeyPairAsync("ec", { namedCurve: curve }),
      };
    }
  }
}
