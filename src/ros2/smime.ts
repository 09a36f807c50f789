/**
 * S/MIME signing of DDS governance and permissions documents: CMS SignedData (RFC 5652 section 5) with a
 * SHA-256 digest, detached, in text mode — the content signed is `Content-Type: text/plain` + CRLF CRLF +
 * the document with CRLF line ends, which is what OpenSSL's PKCS7_TEXT produces and what Cyclone DDS and
 * Fast DDS check (`PKCS7_verify(..., PKCS7_TEXT)`). The signer is any `Signer`, so the CA key can sit in an
 * HSM. Verification here is the same check, for `fleetroot ros2 verify`.
 */
import crypto, { X509Certificate } from "node:crypto";
import type { SignatureScheme, Signer } from "../keys/index.js";
import { verifySignature } from "../keys/index.js";
import {
  DerReader,
  algorithmIdentifier,
  certificateParts,
  encode,
  explicit,
  implicitConstructed,
  integer,
  octetString,
  oid,
  seq,
  setOf,
  signatureAlgorithm,
  time,
} from "../crypto/index.js";
import { fail } from "../errors/index.js";

const OIDS = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;

const TEXT_HEADER = "Content-Type: text/plain\r\n\r\n";
const MAX_SMIME_BYTES = 4 * 1024 * 1024;

/** The bytes a text-mode signature covers: the text/plain header and the content with CRLF line ends. */
export function canonicalText(content: string): Buffer {
  return Buffer.from(TEXT_HEADER + content.replace(/\r?\n/g, "\r\n"), "utf8");
}

/** SHA-256 for every key type: the DDS plugins and sros2 use it. */
function schemeFor(signer: Signer): SignatureScheme {
  switch (signer.algorithm) {
    case "ecdsa-p256":
    case "ecdsa-p384":
      return "ecdsa-sha256";
    case "ed25519":
      return "ed25519";
    default:
      return "rsa-pkcs1-sha256";
  }
}

/**
 * Signs `content` and returns the S/MIME message (multipart/signed, detached signature) as written to a
 * `.p7s` file. `signerCert` is the certificate of the signer's key (DER); it is embedded for the verifier.
 */
export async function signSmime(
  content: string,
  signerCert: Uint8Array,
  signer: Signer,
  signingTime: Date,
): Promise<string> {
  const parts = certificateParts(signerCert);
  const body = canonicalText(content);
  const digest = crypto.createHash("sha256").update(body).digest();
  const alg = signatureAlgorithm(signer, schemeFor(signer));
  // RFC 5652 5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31).
  const attrs = [
    seq(oid(OIDS.contentType), setOf([oid(OIDS.data)])),
    seq(oid(OIDS.signingTime), setOf([time(Math.floor(signingTime.getTime() / 1000) * 1000)])),
    seq(oid(OIDS.messageDigest), setOf([octetString(digest)])),
  ];
  const signedAttrs = encode(setOf(attrs));
  const signature = await signer.sign(signedAttrs, alg.scheme);
  // [0] IMPLICIT: exactly the (sorted) SET OF that was signed, retagged.
  const implicitAttrs = Buffer.from(signedAttrs);
  implicitAttrs[0] = 0xa0;
  const signerInfo = seq(
    integer(1),
    seq(parts.issuer, integer(parts.serial)),
    algorithmIdentifier(OIDS.sha256),
    implicitAttrs,
    alg.der,
    octetString(signature),
  );
  const signedData = seq(
    integer(1),
    setOf([algorithmIdentifier(OIDS.sha256)]),
    seq(oid(OIDS.data)),
    implicitConstructed(0, [signerCert]),
    setOf([signerInfo]),
  );
  const der = encode(seq(oid(OIDS.signedData), explicit(0, signedData)));
  return smimeMessage(body, der);
}

function smimeMessage(canonical: Buffer, der: Buffer): string {
  const boundary = `----${crypto.randomBytes(16).toString("hex").toUpperCase()}`;
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return (
    "MIME-Version: 1.0\n" +
    `Content-Type: multipart/signed; protocol="application/x-pkcs7-signature"; micalg="sha-256"; boundary="${boundary}"\n\n` +
    "This is an S/MIME signed message\n\n" +
    `--${boundary}\n` +
    canonical.toString("utf8") +
    `\n--${boundary}\n` +
    'Content-Type: application/x-pkcs7-signature; name="smime.p7s"\n' +
    "Content-Transfer-Encoding: base64\n" +
    'Content-Disposition: attachment; filename="smime.p7s"\n\n' +
    b64 +
    `\n--${boundary}--\n\n`
  );
}

export interface SmimeVerification {
  /** The signed document (text-mode header removed, CRLF turned back into LF). */
  readonly content: string;
  /** The embedded signer certificate (DER). */
  readonly signerCert: Uint8Array;
  readonly signingTime?: Date;
}

/**
 * Verifies an S/MIME message against a trusted CA certificate (PEM or DER): the content digest, the
 * signature, and that the signer is the CA itself or a certificate the CA issued. Fails with
 * FR_ROS2_SIGNATURE naming what did not hold.
 */
export function verifySmime(message: string, caCert: Uint8Array, what = "the document"): SmimeVerification {
  if (message.length > MAX_SMIME_BYTES) fail("FR_ROS2_SIGNATURE", `${what} is larger than 4 MiB`);
  const { content, signature } = splitMultipart(message, what);
  const der = Buffer.from(signature.replace(/\s+/g, ""), "base64");
  const cms = readSignedData(der, what);
  const digest = crypto.createHash("sha256").update(content).digest();
  if (!cms.messageDigest || !crypto.timingSafeEqual(cms.messageDigest, digest)) {
    fail("FR_ROS2_SIGNATURE", `${what}: the signed content was altered (message digest mismatch)`);
  }
  const signerDer = cms.certificates.find((c) => {
    const p = certificateParts(c);
    return Buffer.compare(p.issuer, cms.issuer) === 0 && Buffer.compare(p.serial, cms.serial) === 0;
  });
  if (!signerDer) fail("FR_ROS2_SIGNATURE", `${what}: the signer's certificate is not in the signature`);
  const signerParts = certificateParts(signerDer);
  if (!verifySignature(signerParts.spki, cms.scheme, cms.signedAttrs, cms.signature)) {
    fail("FR_ROS2_SIGNATURE", `${what}: the signature does not verify`);
  }
  const ca = new X509Certificate(Buffer.from(caCert));
  const signer = new X509Certificate(Buffer.from(signerDer));
  const isCa = Buffer.compare(ca.raw, signer.raw) === 0;
  if (!isCa && !(signer.checkIssued(ca) && signer.verify(ca.publicKey))) {
    fail(
      "FR_ROS2_SIGNATURE",
      `${what} is signed by "${signer.subject}", which is not the expected CA "${ca.subject}"`,
    );
  }
  const text = content.toString("utf8");
  if (!/^content-type:\s*text\/plain/i.test(text)) {
    fail("FR_ROS2_SIGNATURE", `${what} was not signed in text mode (no text/plain header)`);
  }
  const start = text.indexOf("\r\n\r\n");
  return {
    content: text.slice(start + 4).replace(/\r\n/g, "\n"),
    signerCert: signerDer,
    ...(cms.signingTime ? { signingTime: cms.signingTime } : {}),
  };
}

/** Splits multipart/signed into the signed part (exact bytes, CRLF line ends) and the base64 signature. */
function splitMultipart(message: string, what: string): { content: Buffer; signature: string } {
  const m = /boundary="?([^";\r\n]+)"?/i.exec(message);
  if (!m?.[1]) fail("FR_ROS2_SIGNATURE", `${what} is not an S/MIME multipart/signed message`);
  const delim = `--${m[1]}`;
  const lines = message.split(/\r?\n/);
  const parts: string[][] = [];
  let cur: string[] | undefined;
  for (const line of lines) {
    if (line === delim || line === `${delim}--`) {
      if (cur) parts.push(cur);
      if (line.endsWith("--") && line !== delim) break;
      cur = [];
    } else if (cur) cur.push(line);
  }
  const [data, sig] = parts;
  if (!data || !sig)
    fail("FR_ROS2_SIGNATURE", `${what}: the multipart message lacks the content or signature part`);
  // As OpenSSL's multipart reader: lines joined with CRLF, the line end before the boundary dropped.
  const content = Buffer.from(data.join("\r\n"), "utf8");
  const blank = sig.indexOf("");
  if (blank < 0) fail("FR_ROS2_SIGNATURE", `${what}: the signature part has no body`);
  const headers = sig.slice(0, blank).join("\n");
  if (!/pkcs7-signature/i.test(headers))
    fail("FR_ROS2_SIGNATURE", `${what}: the second part is not a PKCS#7 signature`);
  return { content, signature: sig.slice(blank + 1).join("") };
}

interface SignedDataParts {
  certificates: Uint8Array[];
  issuer: Uint8Array;
  serial: Uint8Array;
  signedAttrs: Uint8Array;
  messageDigest?: Buffer;
  signingTime?: Date;
  scheme: SignatureScheme;
  signature: Uint8Array;
}

const limits = {
  maxBytes: MAX_SMIME_BYTES,
  maxDepth: 32,
  code: "FR_ROS2_SIGNATURE",
  what: "the CMS signature",
} as const;

function readSignedData(der: Uint8Array, what: string): SignedDataParts {
  const r = new DerReader(der, limits);
  const ci = r.children(r.expect(r.root(), 0x30, "ContentInfo"));
  if (r.oid(r.expect(ci[0], 0x06, "contentType")) !== OIDS.signedData) {
    fail("FR_ROS2_SIGNATURE", `${what}: the signature is not CMS SignedData`);
  }
  const sdWrap = r.children(r.expect(ci[1], 0xa0, "content"));
  const sd = r.children(r.expect(sdWrap[0], 0x30, "SignedData"));
  let i = 3;
  const certificates: Uint8Array[] = [];
  if (sd[i]?.tag === 0xa0) {
    for (const c of r.children(sd[i] as NonNullable<(typeof sd)[number]>))
      if (c.tag === 0x30) certificates.push(r.raw(c));
    i++;
  }
  if (sd[i]?.tag === 0xa1) i++;
  const infos = r.children(r.expect(sd[i], 0x31, "signerInfos"));
  if (infos.length !== 1)
    fail("FR_ROS2_SIGNATURE", `${what}: expected exactly one signer, found ${infos.length}`);
  const si = r.children(r.expect(infos[0], 0x30, "SignerInfo"));
  const sid = r.children(r.expect(si[1], 0x30, "issuerAndSerialNumber"));
  const issuer = r.raw(r.expect(sid[0], 0x30, "issuer"));
  const serial = r.content(r.expect(sid[1], 0x02, "serialNumber"));
  const digestAlg = r.children(r.expect(si[2], 0x30, "digestAlgorithm"));
  if (r.oid(r.expect(digestAlg[0], 0x06, "digest OID")) !== OIDS.sha256) {
    fail("FR_ROS2_SIGNATURE", `${what}: the digest algorithm is not SHA-256`);
  }
  const attrsEl = r.expect(si[3], 0xa0, "signedAttrs");
  const raw = Buffer.from(r.raw(attrsEl));
  raw[0] = 0x31; // RFC 5652 5.4: the signature covers the attributes with the SET OF tag
  let messageDigest: Buffer | undefined;
  let signingTime: Date | undefined;
  for (const a of r.children(attrsEl)) {
    const [typeEl, valuesEl] = r.children(a);
    const type = r.oid(r.expect(typeEl, 0x06, "attribute type"));
    const value = r.children(r.expect(valuesEl, 0x31, "attribute values"))[0];
    if (!value) continue;
    if (type === OIDS.messageDigest) messageDigest = Buffer.from(r.content(value));
    if (type === OIDS.signingTime)
      signingTime = parseTime(Buffer.from(r.content(value)).toString("latin1"), value.tag);
  }
  const sigAlg = r.children(r.expect(si[4], 0x30, "signatureAlgorithm"));
  const sigOid = r.oid(r.expect(sigAlg[0], 0x06, "signature OID"));
  const scheme = schemeOf(sigOid, what);
  const signature = r.content(r.expect(si[5], 0x04, "signature"));
  return {
    certificates,
    issuer,
    serial,
    signedAttrs: raw,
    signature,
    scheme,
    ...(messageDigest ? { messageDigest } : {}),
    ...(signingTime ? { signingTime } : {}),
  };
}

function schemeOf(sigOid: string, what: string): SignatureScheme {
  switch (sigOid) {
    case "1.2.840.10045.4.3.2":
      return "ecdsa-sha256";
    case "1.2.840.10045.4.3.3":
      return "ecdsa-sha384";
    case "1.3.101.112":
      return "ed25519";
    case "1.2.840.113549.1.1.1": // rsaEncryption: PKCS#1 v1.5 with the digest algorithm (SHA-256)
    case "1.2.840.113549.1.1.11":
      return "rsa-pkcs1-sha256";
    default:
      return fail("FR_ROS2_SIGNATURE", `${what}: unsupported signature algorithm ${sigOid}`);
  }
}

function parseTime(s: string, tag: number): Date | undefined {
  const m =
    tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  let y = Number(m[1]);
  if (tag === 0x17) y += y < 50 ? 2000 : 1900;
  return new Date(Date.UTC(y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
