/**
 * Revocation: the identity CA signs a CRL (RFC 5280 section 5) listing every revoked enclave certificate;
 * it is written to `public/crl.pem` and into every enclave as `crl.pem`, which rmw passes to the DDS
 * security plugins (Cyclone DDS `Security/Authentication/CRL`, Fast DDS `...PKI-DH.identity_crl`).
 */
import fs from "node:fs/promises";
import path from "node:path";
import {
  type CrlReason,
  buildCrl,
  certificateParts,
  derFrom,
  keyIdentifier,
  serialHex,
  toPem,
} from "../crypto/index.js";
import { fail } from "../errors/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { DAY, type Ros2Keystore, seconds } from "./keystore.js";
import { listEnclaves, requireEnclave } from "./enclave.js";
import { PUBLIC, files } from "./layout.js";

export interface RevokeOptions {
  readonly reason?: CrlReason;
  /** Days until the CRL's nextUpdate (default 365); the plugins refuse every peer once a CRL has expired. */
  readonly crlValidityDays?: number;
}

/** Revokes enclave `name`'s certificate and rewrites the CRL everywhere; returns the revoked serial. */
export async function revokeEnclave(
  ks: Ros2Keystore,
  name: string,
  opts: RevokeOptions = {},
): Promise<string> {
  const dir = await requireEnclave(ks, name);
  const der = derFrom(await fs.readFile(path.join(dir, files.cert), "utf8"), "CERTIFICATE");
  const serial = serialHex(certificateParts(der).serial);
  const now = ks.deps.clock.now();
  const revoked = ks.state.revoked.some((r) => r.serial === serial)
    ? ks.state.revoked
    : [
        ...ks.state.revoked,
        {
          serial,
          enclave: name,
          revokedAt: new Date(seconds(now.getTime())).toISOString(),
          ...(opts.reason ? { reason: opts.reason } : {}),
        },
      ];
  await writeCrl(ks, revoked, opts);
  return serial;
}

/** Signs a CRL over `revoked`, saves the state, writes public/crl.pem and each enclave's crl.pem. */
export async function writeCrl(
  ks: Ros2Keystore,
  revoked: Ros2Keystore["state"]["revoked"],
  opts: RevokeOptions = {},
): Promise<void> {
  const days = opts.crlValidityDays ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650)
    fail("FR_VALIDATION", `CRL validity must be 1–3650 days, not ${days}`);
  const ca = await ks.identityCa();
  const parts = certificateParts(ca.certDer);
  const signer = await ca.signer();
  const now = seconds(ks.deps.clock.now().getTime());
  const crlNumber = ks.state.crlNumber + 1;
  const crl = await buildCrl(
    {
      issuerNameDer: parts.subject,
      issuerSki: parts.subjectKeyId ?? keyIdentifier(parts.spki),
      thisUpdate: new Date(now),
      nextUpdate: new Date(now + days * DAY),
      crlNumber,
      entries: revoked.map((r) => ({
        serial: Buffer.from(r.serial.length % 2 ? `0${r.serial}` : r.serial, "hex"),
        revokedAt: new Date(r.revokedAt),
        ...(r.reason ? { reason: r.reason as CrlReason } : {}),
      })),
    },
    signer,
  );
  const pem = toPem(crl, "X509 CRL");
  // State first: a CRL on disk that the state does not know of would be lost at the next revocation.
  await ks.saveState({ ...ks.state, crlNumber, revoked });
  await writeFileAtomic(ks.path(PUBLIC, files.crl), pem);
  for (const e of await listEnclaves(ks)) await writeFileAtomic(path.join(e.dir, files.crl), pem);
}
