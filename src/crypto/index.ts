/**
 * src/crypto public API: pure, I/O-free X.509 encoding for the PKI — DER, certificates, CSRs, CRLs,
 * OCSP and PEM. See docs/pki-encoding.md for what each part builds and which RFC sections it follows.
 */
export {
  type DerNode,
  type DerTree,
  Tag,
  algorithmIdentifier,
  bitString,
  boolean,
  constructed,
  encode,
  enumerated,
  explicit,
  generalizedTime,
  ia5String,
  implicitConstructed,
  implicitPrimitive,
  integer,
  namedBits,
  octetString,
  oid,
  printableString,
  seq,
  setOf,
  time,
  tlv,
  utf8String,
} from "./der.js";
export { DerReader, type DerElement, type ReaderLimits } from "./der-reader.js";
export { OID, EKU } from "./oids.js";
export { type SignatureAlgorithm, signatureAlgorithm } from "./algorithms.js";
export { type DnAttribute, type NameSpec, encodeName, attributeName } from "./name.js";
export { type SanSpec, ipBytes, ipText } from "./general-name.js";
export {
  type KeyUsage,
  type NameConstraints,
  type NameSubtrees,
  type PolicySpec,
  type RawExtension,
  keyUsageBits,
} from "./extensions.js";
export { type KeyIdMethod, keyIdentifier, keyHash, subjectPublicKeyBits } from "./key-id.js";
export { type Serial, serialContent, serialHex, randomSerial } from "./serial.js";
export { type CertificateParts, certificateParts } from "./cert-reader.js";
export {
  type CertificateTemplate,
  type IssuanceTemplate,
  type IssuerProfile,
  type StandaloneCertificateTemplate,
  buildCertificate,
  createIssuanceTemplate,
} from "./certificate.js";
export {
  type CsrAttributeValue,
  type CsrKey,
  type CsrLimits,
  type CsrSignatureAlgorithm,
  type ParsedCsr,
  ecParametersOf,
  parseCsr,
  verifyCsrSignature,
} from "./csr.js";
export {
  type CrlEntry,
  type CrlReason,
  type CrlSpec,
  type IssuingDistributionPoint,
  buildCrl,
  crlReasons,
  encodeCrlEntry,
  reasonCode,
} from "./crl.js";
export {
  type OcspCertId,
  type OcspCertStatus,
  type OcspErrorStatus,
  type OcspHash,
  type OcspRequest,
  type OcspRequestLimits,
  type OcspResponseSpec,
  type OcspSingleResponse,
  buildOcspResponse,
  encodeSingleResponse,
  ocspErrorResponse,
  ocspErrorStatuses,
  parseOcspRequest,
} from "./ocsp.js";
export {
  type PemBlock,
  type PemCertificates,
  type PemLabel,
  derFrom,
  fromPem,
  pemCertificates,
  toPem,
} from "./pem.js";
