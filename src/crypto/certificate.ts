/**
 * X.509 v3 certificates (RFC 5280 4.1). `createIssuanceTemplate` does the issuer-constant work once —
 * issuer Name copied byte-for-byte from the issuer certificate's subject, signature AlgorithmIdentifier,
 * authorityKeyIdentifier, CRL distribution point and AIA extensions — so each certificate costs only its
 * own fields, one hash for the SKI, one buffer for the TBSCertificate and one signature.
 */
import { createPublicKey } from "node:crypto";
import type { SignatureScheme, Signer } from "../keys/types.js";
import { fail } from "../errors/index.js";
import { type SignatureAlgorithm, signatureAlgorithm } from "./algorithms.js";
import { certificateParts } from "./cert-reader.js";
import { type DerNode, bitString, constructed, encode, explicit, integer, seq, time } from "./der.js";
import {
  type KeyUsage,
  type NameConstraints,
  type PolicySpec,
  type RawExtension,
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  extKeyUsage,
  keyUsage,
  nameConstraints,
  ocspNoCheck,
  rawExtension,
  subjectAltName,
  subjectKeyIdentifier,
} from "./extensions.js";
import type { SanSpec } from "./general-name.js";
import { type KeyIdMethod, keyIdentifier } from "./key-id.js";
import { type NameSpec, encodeName } from "./name.js";
import { type Serial, serialInteger } from "./serial.js";

/** What is constant for every certificate one issuer signs. */
export interface IssuerProfile {
  /** The issuer's certificate (DER): its subject becomes the issuer Name, its SKI the AKI. */
  readonly certificate?: Uint8Array;
  /** The issuer Name (DER) when no certificate is at hand. */
  readonly nameDer?: Uint8Array;
  /** The authorityKeyIdentifier; by default the issuer certificate's SKI, else derived from the signer's key. */
  readonly keyIdentifier?: Uint8Array;
  /** cRLDistributionPoints URIs placed in every certificate (RFC 5280 4.2.1.13). */
  readonly crlUrls?: readonly string[];
  /** authorityInfoAccess OCSP responder URLs (4.2.2.1). */
  readonly ocspUrls?: readonly string[];
  /** authorityInfoAccess caIssuers URLs (4.2.2.1). */
  readonly caIssuersUrls?: readonly string[];
  /** Signature scheme; the signer's default when omitted. */
  readonly scheme?: SignatureScheme;
  /** How subject key identifiers are derived (default RFC 5280 SHA-1 method). */
  readonly keyIdMethod?: KeyIdMethod;
}

/** The per-certificate fields. */
export interface CertificateTemplate {
  /** Positive, at most 20 octets (RFC 5280 4.1.2.2). */
  readonly serial: Serial;
  readonly subject: NameSpec;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo, DER. */
  readonly publicKey: Uint8Array;
  /** Present for CA certificates: basicConstraints cA with optional pathLen, and optional nameConstraints. */
  readonly ca?: { readonly pathLen?: number; readonly nameConstraints?: NameConstraints };
  /** Default: keyCertSign + cRLSign + digitalSignature for CAs, digitalSignature otherwise. */
  readonly keyUsage?: readonly KeyUsage[];
  /** Names (serverAuth, clientAuth, ocspSigning…) or OIDs. */
  readonly extKeyUsage?: readonly string[];
  readonly san?: SanSpec;
  /** Overrides the derived subjectKeyIdentifier. */
  readonly subjectKeyId?: Uint8Array;
  readonly policies?: readonly PolicySpec[];
  /** Adds id-pkix-ocsp-nocheck (for delegated OCSP responders, RFC 6960 4.2.2.2.1). */
  readonly ocspNoCheck?: boolean;
  /** Further extensions, appended as given. */
  readonly extensions?: readonly RawExtension[];
}

/**
 * A template for `buildCertificate`: the certificate plus its issuer. An issuer with neither certificate
 * nor name (or none at all) means self-signed; its other options (URLs, scheme, key id method) still apply.
 */
export interface StandaloneCertificateTemplate extends CertificateTemplate {
  readonly issuer?: IssuerProfile;
}

export interface IssuanceTemplate {
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** The issuer Name DER placed in every certificate. */
  readonly issuerName: Uint8Array;
  /** The TBSCertificate DER for a template, unsigned (exposed for tests and for offline ceremonies). */
  tbs(tpl: CertificateTemplate): Buffer;
  /** Builds and signs one certificate; returns its DER. */
  issue(tpl: CertificateTemplate): Promise<Buffer>;
}

const VERSION_V3 = encode(explicit(0, integer(2)));

/** Precomputes everything constant for one issuer (see the module comment). */
export function createIssuanceTemplate(issuer: IssuerProfile, signer: Signer): IssuanceTemplate {
  const alg = signatureAlgorithm(signer, issuer.scheme);
  const method = issuer.keyIdMethod ?? "sha1";
  let issuerName: Uint8Array;
  let aki: Uint8Array;
  if (issuer.certificate) {
    const parts = certificateParts(issuer.certificate);
    if (!sameKey(parts.spki, signer.publicKey)) {
      fail("FR_CERT_TEMPLATE", "the signer's key is not the key of the issuer certificate");
    }
    issuerName = parts.subject;
    aki = issuer.keyIdentifier ?? parts.subjectKeyId ?? keyIdentifier(signer.publicKey, method);
  } else if (issuer.nameDer) {
    issuerName = encodeName(issuer.nameDer);
    aki = issuer.keyIdentifier ?? keyIdentifier(signer.publicKey, method);
  } else {
    return fail("FR_CERT_TEMPLATE", "an issuer needs its certificate or its name");
  }
  const constant: Buffer[] = [authorityKeyIdentifier(aki)];
  if (issuer.crlUrls?.length) constant.push(crlDistributionPoints(issuer.crlUrls));
  if (issuer.ocspUrls?.length || issuer.caIssuersUrls?.length) {
    constant.push(authorityInfoAccess(issuer.ocspUrls ?? [], issuer.caIssuersUrls ?? []));
  }
  const issuerConstant = Buffer.concat(constant);
  const profileCache = new Map<string, Buffer>();

  const tbs = (tpl: CertificateTemplate): Buffer => {
    const notBefore = tpl.notBefore.getTime();
    const notAfter = tpl.notAfter.getTime();
    // An Invalid Date (a TTL past JavaScript's date range) would otherwise read as "not later".
    if (Number.isNaN(notBefore) || Number.isNaN(notAfter))
      fail("FR_VALIDATION", "the validity period is out of range: a certificate must end by the year 9999");
    if (!(notAfter > notBefore)) fail("FR_CERT_TEMPLATE", "notAfter must be later than notBefore");
    const subject = encodeName(tpl.subject);
    const emptySubject = subject.length === 2;
    const hasSan = !!(
      tpl.san &&
      (tpl.san.dns?.length || tpl.san.uri?.length || tpl.san.ip?.length || tpl.san.email?.length)
    );
    if (emptySubject && !hasSan)
      fail("FR_CERT_TEMPLATE", "a certificate with an empty subject needs subjectAltName (4.1.2.6)");
    const exts: DerNode[] = [profileExtensions(tpl, profileCache)];
    exts.push(subjectKeyIdentifier(tpl.subjectKeyId ?? keyIdentifier(tpl.publicKey, method)));
    // A self-signed certificate's AKI equals its own SKI, which is already the constant part.
    exts.push(issuerConstant);
    if (hasSan && tpl.san) exts.push(subjectAltName(tpl.san, emptySubject));
    if (tpl.ca?.nameConstraints) exts.push(nameConstraints(tpl.ca.nameConstraints));
    if (tpl.policies?.length) exts.push(certificatePolicies(tpl.policies));
    if (tpl.ocspNoCheck) exts.push(ocspNoCheck());
    for (const e of tpl.extensions ?? []) exts.push(rawExtension(e));
    return encode(
      seq(
        VERSION_V3,
        serialInteger(tpl.serial),
        alg.der,
        issuerName,
        seq(time(notBefore), time(notAfter)),
        subject,
        tpl.publicKey,
        explicit(3, constructed(0x30, exts)),
      ),
    );
  };

  return {
    signatureAlgorithm: alg,
    issuerName,
    tbs,
    async issue(tpl) {
      const body = tbs(tpl);
      const signature = await signer.sign(body, alg.scheme);
      return encode(seq(body, alg.der, bitString(signature)));
    },
  };
}

/** basicConstraints, keyUsage and extKeyUsage, which repeat across a role's certificates: cached. */
function profileExtensions(tpl: CertificateTemplate, cache: Map<string, Buffer>): Buffer {
  const usages =
    tpl.keyUsage ?? (tpl.ca ? ["keyCertSign", "cRLSign", "digitalSignature"] : ["digitalSignature"]);
  const key = `${tpl.ca ? `ca:${tpl.ca.pathLen ?? "-"}` : "ee"}|${usages.join(",")}|${(tpl.extKeyUsage ?? []).join(",")}`;
  let hit = cache.get(key);
  if (!hit) {
    if (tpl.ca && !usages.includes("keyCertSign"))
      fail("FR_CERT_TEMPLATE", "a CA certificate needs the keyCertSign usage (4.2.1.3)");
    if (!tpl.ca && usages.some((u) => u === "keyCertSign")) {
      fail("FR_CERT_TEMPLATE", "keyCertSign is only for CA certificates (4.2.1.9)");
    }
    const parts = [basicConstraints(tpl.ca), keyUsage(usages)];
    if (tpl.extKeyUsage?.length) parts.push(extKeyUsage(tpl.extKeyUsage));
    hit = Buffer.concat(parts);
    if (cache.size < 256) cache.set(key, hit);
  }
  return hit;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (Buffer.compare(a, b) === 0) return true;
  try {
    const ka = createPublicKey({ key: Buffer.from(a), format: "der", type: "spki" });
    return ka.equals(createPublicKey({ key: Buffer.from(b), format: "der", type: "spki" }));
  } catch {
    return false;
  }
}

/**
 * Builds one certificate. Without `tpl.issuer` it is self-signed: the issuer Name is the subject and the
 * signer must hold the certificate's own key. For many certificates from one issuer, use
 * `createIssuanceTemplate` once and call `issue` per certificate.
 */
export async function buildCertificate(
  tpl: StandaloneCertificateTemplate,
  issuerSigner: Signer,
): Promise<Buffer> {
  let issuer: IssuerProfile = tpl.issuer ?? {};
  if (!issuer.certificate && !issuer.nameDer) {
    if (!sameKey(tpl.publicKey, issuerSigner.publicKey)) {
      fail(
        "FR_CERT_TEMPLATE",
        "a self-signed certificate must be signed by its own key; give the issuer otherwise",
      );
    }
    issuer = {
      ...issuer,
      nameDer: encodeName(tpl.subject),
      keyIdentifier: issuer.keyIdentifier ?? tpl.subjectKeyId,
    };
  }
  return createIssuanceTemplate(issuer, issuerSigner).issue(tpl);
}
