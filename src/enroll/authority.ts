/**
 * The seam between provisioners and the PKI: SignOptions + CSR → certificate chain, through pki/'s
 * Authority (which checks the role and stores the certificate), and revocation through the same
 * Authority (so a revocation reaches the CRL state and OCSP at once). Nothing else in enroll/ or
 * devices/ touches pki/.
 *
 * The provisioner decides the names, so the CSR may ask for no others: its CN must be absent or the
 * device id, its SANs a subset of the options'. The role still applies (key type, TTL cap, usages), and
 * must allow the device names (e.g. allowed_uri_sans "urn:fleetroot:device:*" and allow_any_name or
 * allowed_common_names "*"); docs/devices.md shows a role that fits.
 */
import { X509Certificate } from "node:crypto";
import type { ParsedCsr } from "../crypto/index.js";
import { fail } from "../errors/index.js";
import type { PkiServices } from "../pki/index.js";
import type { SignOptions } from "./sign-options.js";

export interface IssuedChain {
  readonly certificate: Buffer;
  /** Issuer certificate first, up to the root. */
  readonly chain: readonly Buffer[];
  readonly issuerId: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface DeviceAuthority {
  /** Parses a PEM CSR and checks its self-signature (FR_VALIDATION / FR_CSR_* when it is not one). */
  readCsr(input: unknown, maxBytes: number): Promise<ParsedCsr>;
  /** Signs a CSR that readCsr returned. */
  sign(options: SignOptions, csr: ParsedCsr): Promise<IssuedChain>;
  /** Revokes one certificate (idempotent); it is in the delta CRL and OCSP at once. */
  revoke(
    issuerId: string,
    serial: string,
    reason: "cessationOfOperation" | "keyCompromise" | "superseded",
  ): Promise<void>;
  /** Whether pki/ holds the certificate as revoked (revocations made through /v1/pki/revoke too). */
  isRevoked(issuerId: string, serial: string): Promise<boolean>;
  /** Throws FR_VALIDATION unless pki/ has the role (a provisioner bound to a missing role could never sign). */
  checkRole(role: string): Promise<void>;
}

/** The authority backed by the running PKI module's services. */
export function pkiAuthority(services: () => PkiServices | undefined): DeviceAuthority {
  const pki = (): PkiServices =>
    services() ??
    fail("FR_PKI_NO_ISSUER", "the PKI module is not running; device certificates cannot be issued");
  return {
    readCsr(input, maxBytes) {
      try {
        return pki().authority.verifyCsr(input, maxBytes);
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async checkRole(role) {
      try {
        await pki().roles.get(role);
      } catch (e) {
        if ((e as { code?: unknown }).code !== "FR_PKI_ROLE_NOT_FOUND") throw e;
        fail("FR_VALIDATION", `there is no PKI role "${role}"; create it first with pki/roles/${role}`);
      }
    },
    async sign(options, csr) {
      checkCsrNames(options, csr);
      // The CSR goes to pki/ as readCsr verified it, not as text to be parsed and verified again.
      const body: Record<string, unknown> = {
        common_name: options.commonName,
        ...(options.uriSans.length ? { uri_sans: [...options.uriSans] } : {}),
        ...(options.dnsSans.length ? { alt_names: [...options.dnsSans] } : {}),
        ...(options.ttlSeconds ? { ttl: options.ttlSeconds } : {}),
      };
      const issued = await pki().authority.sign(
        options.role,
        body,
        `${options.method}:${options.provisioner}`,
        csr,
      );
      const notBefore = notBeforeOf(issued.der);
      return {
        certificate: issued.der,
        chain: [issued.issuer.certificate, ...issued.issuer.chain],
        issuerId: issued.issuer.id,
        serial: issued.serial,
        notBefore,
        notAfter: issued.notAfter,
      };
    },
    async revoke(issuerId, serial, reason) {
      await pki().authority.revoke(serial, reason, issuerId);
    },
    async isRevoked(issuerId, serial) {
      const s = await pki().certs.status(issuerId, serial);
      return s?.revoked_at !== null && s?.revoked_at !== undefined;
    },
  };
}

/** The CSR may not ask for names beyond what the provisioner allows (the role might grant them). */
function checkCsrNames(o: SignOptions, csr: ParsedCsr): void {
  const cn = csr.subject.attributes.find((a) => a.type === "CN")?.value;
  if (cn !== undefined && cn !== o.commonName) {
    fail(
      "FR_ENROLL_DENIED",
      `the CSR asks for CN "${cn.slice(0, 64)}"; leave it empty or use the device id "${o.commonName}"`,
    );
  }
  const extra = [
    ...csr.san.dns.filter((n) => !o.dnsSans.includes(n)),
    ...csr.san.uri.filter((n) => !o.uriSans.includes(n)),
    ...csr.san.ip,
    ...csr.san.email,
  ];
  if (extra.length)
    fail(
      "FR_ENROLL_DENIED",
      `the CSR asks for names the provisioner does not grant: ${extra.slice(0, 3).join(", ")}`,
    );
}

function notBeforeOf(der: Buffer): number {
  return new Date(new X509Certificate(der).validFrom).getTime();
}
