/**
 * Reads the few fields an issuer needs from its own certificate, byte-exact: the subject Name (copied
 * verbatim as the issuer of everything it signs, RFC 5280 4.1.2.4 / 7.1 name matching), the SPKI and the
 * subjectKeyIdentifier (which becomes the authorityKeyIdentifier, 4.2.1.1), and the pathLenConstraint
 * (4.2.1.9) that bounds the CAs it may sign.
 */
import { DerReader } from "./der-reader.js";
import { OID } from "./oids.js";

export interface CertificateParts {
  readonly tbs: Uint8Array;
  readonly serial: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly spki: Uint8Array;
  /** The subjectKeyIdentifier value, when the certificate has one. */
  readonly subjectKeyId: Uint8Array | undefined;
  /** basicConstraints pathLenConstraint, when the certificate has one. */
  readonly pathLen: number | undefined;
}

const limits = {
  maxBytes: 64 * 1024,
  maxDepth: 32,
  code: "FR_DER_INVALID",
  what: "the certificate",
} as const;

export function certificateParts(der: Uint8Array): CertificateParts {
  const r = new DerReader(der, limits);
  const root = r.expect(r.root(), 0x30, "Certificate");
  r.checkDepth(root);
  const [tbsEl] = r.children(root);
  const tbs = r.expect(tbsEl, 0x30, "tbsCertificate");
  const f = r.children(tbs);
  let i = f[0]?.tag === 0xa0 ? 1 : 0;
  const serial = r.expect(f[i++], 0x02, "serialNumber");
  r.expect(f[i++], 0x30, "signature");
  const issuer = r.expect(f[i++], 0x30, "issuer");
  r.expect(f[i++], 0x30, "validity");
  const subject = r.expect(f[i++], 0x30, "subject");
  const spki = r.expect(f[i++], 0x30, "subjectPublicKeyInfo");
  let subjectKeyId: Uint8Array | undefined;
  let pathLen: number | undefined;
  const extsWrapper = f.slice(i).find((e) => e.tag === 0xa3);
  if (extsWrapper) {
    const [list] = r.children(extsWrapper);
    for (const ext of r.children(r.expect(list, 0x30, "extensions"))) {
      const parts = r.children(ext);
      if (parts[0] && r.oid(parts[0]) === OID.subjectKeyIdentifier) {
        const value = r.expect(parts[parts.length - 1], 0x04, "extnValue");
        const inner = r.at(value.contentStart, value.end);
        subjectKeyId = r.content(r.expect(inner, 0x04, "keyIdentifier"));
      } else if (parts[0] && r.oid(parts[0]) === OID.basicConstraints) {
        const value = r.expect(parts[parts.length - 1], 0x04, "extnValue");
        const bc = r.children(r.expect(r.at(value.contentStart, value.end), 0x30, "BasicConstraints"));
        const len = bc.find((e) => e.tag === 0x02);
        if (len) {
          const c = r.content(len);
          if (c.length > 4 || (c[0] ?? 0) & 0x80) r.fail("pathLenConstraint out of range");
          pathLen = c.reduce((a, v) => a * 256 + v, 0);
        }
      }
    }
  }
  return {
    tbs: r.raw(tbs),
    serial: r.content(serial),
    issuer: r.raw(issuer),
    subject: r.raw(subject),
    spki: r.raw(spki),
    subjectKeyId,
    pathLen,
  };
}
