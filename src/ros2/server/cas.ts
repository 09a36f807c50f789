/**
 * The fleet's ROS 2 identity and permissions CAs, with server-held keys (core.keys: barrier-encrypted
 * `file:` keys by default, or any key URI such as `pkcs11:`).
 *
 * DDS needs each CA as a self-signed trust anchor: Cyclone DDS 0.10 loads one certificate as IdentityCA /
 * PermissionsCA and verifies without partial chains, so an intermediate there fails ("unable to get issuer
 * certificate"; docs/ros2.md). With `ca_source: pki` each CA key is therefore certified twice under the same
 * subject and key identifier: self-signed (what DDS is configured with) and as an intermediate signed by a
 * PKI issuer (cross-certification). An enclave certificate then verifies under either, so anything that
 * trusts the fleet root validates enclave → ROS 2 CA (intermediate) → fleet root.
 */
import crypto, { X509Certificate } from "node:crypto";
import path from "node:path";
import {
  type DnAttribute,
  buildCertificate,
  certificateParts,
  randomSerial,
  toPem,
} from "../../crypto/index.js";
import { fail } from "../../errors/index.js";
import type { KeyManager, ProvisionalKey, Signer } from "../../keys/index.js";
import { type PkiServices, assertCanSignCa, buildCsr, caCertRow } from "../../pki/index.js";
import type { Clock } from "../../util/clock.js";
import { mkdirp } from "../../util/index.js";
import type { CaRequest } from "./config.js";

/** One CA as stored (PEM text; the key URI is only ever stored inside the barrier). */
export interface StoredCa {
  /** The self-signed certificate: the DDS trust anchor (identity_ca.cert.pem / permissions_ca.cert.pem). */
  readonly certificate: string;
  readonly keyUri: string;
  /** With ca_source pki: the cross-signed intermediate first, then its issuers up to the fleet root. */
  readonly chain: readonly string[];
}

export interface CaDeps {
  readonly keys: KeyManager;
  readonly clock: Clock;
  readonly dataDir: string;
  readonly pki: () => PkiServices | undefined;
  /** Records a security event (the route's ctx.auditEvent). */
  readonly audit: (name: string, fields: Record<string, string>) => Promise<void>;
}

const BACKDATE_MS = 60_000;
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

/**
 * Creates both CAs as `req` says. Nothing is stored here; the caller stores the result, then calls `keep()`,
 * or `discard()` when storing fails, which removes the two keys generated here. A failure inside removes
 * what it generated before throwing.
 */
export async function createCas(
  d: CaDeps,
  req: CaRequest,
): Promise<{
  identity: StoredCa;
  permissions: StoredCa;
  issuerId: string | undefined;
  keep(): void;
  discard(): Promise<void>;
}> {
  // The key URI is stored as given (inside the barrier), so a pin-value in it still opens the key later.
  // The PKI issuer is resolved first, so a wrong issuer_ref creates no keys.
  const pki = req.source === "pki" ? requirePki(d) : undefined;
  const issuer = pki?.issuers.resolve(req.issuerRef);
  // Likewise an issuer that may not sign CA certificates (pathLen 0) is refused before any key is made.
  if (issuer) assertCanSignCa(issuer, 0);
  const made: ProvisionalKey[] = [];
  const keep = () => {
    for (const k of made) k.keep();
  };
  const discard = async () => {
    for (const k of made.reverse()) await k.discard();
  };
  const make = async (role: string, name: string, keyUri: string | undefined): Promise<StoredCa> => {
    const uri = keyUri ?? (await defaultKeyUri(d.dataDir, role));
    const key = await d.keys.generateProvisional(uri, req.algorithm);
    made.push(key);
    const signer = key.signer;
    const subject: DnAttribute[] = [{ type: "CN", value: name }];
    const now = d.clock.now().getTime();
    let notBefore = new Date(seconds(now - BACKDATE_MS));
    let notAfter = new Date(seconds(now + req.ttlSeconds * 1000));
    const chain: string[] = [];
    let subjectKeyId: Uint8Array | undefined;
    if (pki && issuer) {
      const cross = await crossSign(pki, issuer.id, subject, signer, req.ttlSeconds, d.audit);
      chain.push(toPem(cross.der, "CERTIFICATE"), ...cross.parents.map((p) => toPem(p, "CERTIFICATE")));
      const x = new X509Certificate(cross.der);
      // The twin lives exactly as long as its cross-certificate, and names the same key identifier.
      notBefore = new Date(x.validFrom);
      notAfter = new Date(x.validTo);
      subjectKeyId = certificateParts(cross.der).subjectKeyId;
    }
    const der = await buildCertificate(
      {
        serial: randomSerial(),
        subject,
        notBefore,
        notAfter,
        publicKey: signer.publicKey,
        ca: {},
        ...(subjectKeyId ? { subjectKeyId } : {}),
      },
      signer,
    );
    return { certificate: toPem(der, "CERTIFICATE"), keyUri: uri, chain };
  };
  try {
    const identity = await make("identity", req.identityName, req.identityKey);
    const permissions = await make("permissions", req.permissionsName, req.permissionsKey);
    return { identity, permissions, issuerId: issuer?.id, keep, discard };
  } catch (e) {
    await discard();
    throw e;
  }
}

function requirePki(d: CaDeps): PkiServices {
  return (
    d.pki() ??
    fail("FR_PKI_NO_ISSUER", "ca_source pki needs the PKI module; it is not running on this server")
  );
}

async function defaultKeyUri(dataDir: string, role: string): Promise<string> {
  const dir = path.join(dataDir, "ros2");
  await mkdirp(dir, 0o700);
  return `file:${path.join(dir, `${role}-ca-${crypto.randomBytes(6).toString("hex")}.key`)}`;
}

/**
 * Has the PKI issuer sign an intermediate for `signer`'s key, as `pki/issuer/:ref/sign-intermediate` does
 * (pathLen 0: the ROS 2 CAs sign only enclave certificates), and records it with the issued certificates so
 * it shows in `pki/certs` and can be revoked there.
 */
async function crossSign(
  pki: PkiServices,
  issuerId: string,
  subject: DnAttribute[],
  signer: Signer,
  ttlSeconds: number,
  audit: CaDeps["audit"],
): Promise<{ der: Buffer; parents: Buffer[] }> {
  const issuer = pki.issuers.resolve(issuerId);
  const csr = await buildCsr(subject, signer);
  const out = await pki.issuers.signIntermediate(issuer, csr, { ttlSeconds, pathLen: 0 });
  await pki.certs.insert(caCertRow(issuer.id, out.serial, out.der, "ros2/config", pki.clock.now().getTime()));
  await audit("pki.sign", { serial: out.serial, role: "ros2-ca", issuer: issuer.id });
  return { der: out.der, parents: [issuer.certificate, ...issuer.chain] };
}

/** Opens CA signers once per key URI while unsealed (an HSM session or a decrypted key each). */
export class CaSigners {
  private readonly open = new Map<string, Promise<Signer>>();

  constructor(private readonly keys: KeyManager) {}

  get(uri: string): Promise<Signer> {
    let s = this.open.get(uri);
    if (!s) {
      s = this.keys.open(uri);
      this.open.set(uri, s);
      // A failed open is not kept: the next request reports it afresh.
      s.catch(() => this.open.delete(uri));
    }
    return s;
  }

  clear(): void {
    this.open.clear();
  }
}
