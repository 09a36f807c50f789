/**
 * OCSP (RFC 6960): reading requests (4.1.1) and building responses (4.2.1, BasicOCSPResponse 4.2.2).
 * Both are on the responder's hot path, so they are hand-rolled over the bounded reader and the DER
 * writer; single responses can be pre-encoded and reused while a status is unchanged.
 */
import type { SignatureScheme, Signer } from "../keys/types.js";
import { fail } from "../errors/index.js";
import { signatureAlgorithm } from "./algorithms.js";
import {
  type DerNode,
  bitString,
  constructed,
  encode,
  enumerated,
  explicit,
  generalizedTime,
  implicitConstructed,
  octetString,
  oid,
  seq,
} from "./der.js";
import { DerReader, type DerElement } from "./der-reader.js";
import { type CrlReason, reasonCode } from "./crl.js";
import { extension } from "./extensions.js";
import { keyHash } from "./key-id.js";
import { encodeName } from "./name.js";
import { OID } from "./oids.js";

export type OcspHash = "sha1" | "sha256" | "sha384" | "sha512";

const hashByOid: Record<string, OcspHash> = {
  [OID.sha1]: "sha1",
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

/** One CertID (4.1.1) as read from a request. */
export interface OcspCertId {
  readonly hashAlgorithm: OcspHash;
  readonly issuerNameHash: Uint8Array;
  readonly issuerKeyHash: Uint8Array;
  /** serialNumber INTEGER contents (minimal two's complement; positive serials as sent). */
  readonly serial: Uint8Array;
  /** Lowercase hex of the serial's magnitude (no sign octet), for lookups. */
  readonly serialHex: string;
  /** The CertID exactly as received; echoed in the response so the client matches it byte for byte. */
  readonly der: Uint8Array;
}

export interface OcspRequest {
  readonly certIds: readonly OcspCertId[];
  /** The nonce extension's extnValue contents, when present (RFC 6960 4.4.1, RFC 8954). */
  readonly nonce: Uint8Array | undefined;
  /** True when the request carries optionalSignature (not verified here). */
  readonly signed: boolean;
}

export interface OcspRequestLimits {
  readonly maxBytes?: number;
  readonly maxCertIds?: number;
}

const NONCE_MAX = 64;

/** Parses an OCSPRequest (4.1.1). Malformed input → FR_OCSP_REQUEST_INVALID (answer malformedRequest). */
export function parseOcspRequest(der: Uint8Array, limits: OcspRequestLimits = {}): OcspRequest {
  const r = new DerReader(der, {
    maxBytes: limits.maxBytes ?? 16 * 1024,
    maxDepth: 16,
    code: "FR_OCSP_REQUEST_INVALID",
    what: "the OCSP request",
  });
  const root = r.expect(r.root(), 0x30, "OCSPRequest");
  r.checkDepth(root);
  const [tbsEl, sigEl, extra] = r.children(root);
  if (extra || (sigEl && sigEl.tag !== 0xa0)) r.fail("unexpected fields after tbsRequest");
  const tbs = r.children(r.expect(tbsEl, 0x30, "tbsRequest"));
  let i = 0;
  if (tbs[i]?.tag === 0xa0) {
    const [v] = r.children(tbs[i++] as DerElement);
    const version = r.content(r.expect(v, 0x02, "version"));
    if (version.length !== 1 || version[0] !== 0) r.fail("only OCSP version 1 requests are supported");
  }
  if (tbs[i]?.tag === 0xa1) i++; // requestorName: not used for authorization here
  const list = r.children(r.expect(tbs[i++], 0x30, "requestList"));
  if (list.length === 0) r.fail("requestList is empty");
  const max = limits.maxCertIds ?? 32;
  if (list.length > max) r.fail(`requestList has ${list.length} entries; the limit is ${max}`);
  const certIds = list.map((req) => readCertId(r, r.children(r.expect(req, 0x30, "Request"))[0]));
  let nonce: Uint8Array | undefined;
  const extsEl = tbs[i];
  if (extsEl) {
    r.expect(extsEl, 0xa2, "requestExtensions");
    const [list2] = r.children(extsEl);
    for (const ext of r.children(r.expect(list2, 0x30, "Extensions"))) {
      const parts = r.children(r.expect(ext, 0x30, "Extension"));
      if (parts[0] && r.oid(parts[0]) === OID.ocspNonce) {
        const value = r.expect(parts[parts.length - 1], 0x04, "nonce extnValue");
        if (value.end - value.contentStart > NONCE_MAX || value.end === value.contentStart) {
          r.fail(`the nonce must be 1 to ${NONCE_MAX} octets`);
        }
        nonce = r.content(value);
      }
    }
  }
  if (tbs[i + (extsEl ? 1 : 0)]) r.fail("unexpected fields in tbsRequest");
  return { certIds, nonce, signed: !!sigEl };
}

function readCertId(r: DerReader, el: DerElement | undefined): OcspCertId {
  const [alg, nameHash, keyHashEl, serialEl] = r.children(r.expect(el, 0x30, "CertID"));
  const [algOid] = r.children(r.expect(alg, 0x30, "hashAlgorithm"));
  const dotted = r.oid(r.expect(algOid, 0x06, "hash algorithm"));
  const hashAlgorithm = hashByOid[dotted] ?? r.fail(`hash algorithm ${dotted} is not supported`);
  const serial = r.content(r.expect(serialEl, 0x02, "serialNumber"));
  if (serial.length === 0 || serial.length > 21) r.fail("serialNumber has a bad length");
  let hex = Buffer.from(serial).toString("hex");
  if (hex.startsWith("00") && hex.length > 2) hex = hex.slice(2);
  return {
    hashAlgorithm,
    issuerNameHash: r.content(r.expect(nameHash, 0x04, "issuerNameHash")),
    issuerKeyHash: r.content(r.expect(keyHashEl, 0x04, "issuerKeyHash")),
    serial,
    serialHex: hex,
    der: r.raw(el as DerElement),
  };
}

export type OcspCertStatus =
  "good" | "unknown" | { readonly revoked: { readonly time: Date; readonly reason?: CrlReason } };

export interface OcspSingleResponse {
  /** The CertID as received (`der`), echoed verbatim. */
  readonly certId: Pick<OcspCertId, "der">;
  readonly status: OcspCertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

export interface OcspResponseSpec {
  /** ResponderID byKey (SHA-1 of the responder key bits); default: computed from the signer's key. */
  readonly responderKeyHash?: Uint8Array;
  /** ResponderID byName (DER Name), instead of byKey. */
  readonly responderName?: Uint8Array;
  readonly producedAt: Date;
  /** Single responses, or ones pre-encoded with `encodeSingleResponse`. */
  readonly responses: readonly (OcspSingleResponse | Uint8Array)[];
  /** The request's nonce extnValue contents, echoed (4.4.1). */
  readonly nonce?: Uint8Array;
  /** Certificates that help the client verify the responder (the delegated responder's certificate). */
  readonly certs?: readonly Uint8Array[];
  readonly scheme?: SignatureScheme;
}

const GOOD = Buffer.from([0x80, 0x00]); // good [0] IMPLICIT NULL
const UNKNOWN = Buffer.from([0x82, 0x00]); // unknown [2] IMPLICIT UnknownInfo (NULL)

function certStatus(status: OcspCertStatus): DerNode {
  if (status === "good") return GOOD;
  if (status === "unknown") return UNKNOWN;
  const { time, reason } = status.revoked;
  // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
  const parts: DerNode[] = [generalizedTime(time)];
  if (reason !== undefined) parts.push(explicit(0, enumerated(reasonCode(reason))));
  return implicitConstructed(1, parts);
}

/** One SingleResponse (4.2.1), encoded; cache it while the status and validity hold. */
export function encodeSingleResponse(r: OcspSingleResponse): Buffer {
  const parts: DerNode[] = [r.certId.der, certStatus(r.status), generalizedTime(r.thisUpdate)];
  if (r.nextUpdate) {
    if (r.nextUpdate.getTime() <= r.thisUpdate.getTime())
      fail("FR_VALIDATION", "OCSP nextUpdate must follow thisUpdate");
    parts.push(explicit(0, generalizedTime(r.nextUpdate)));
  }
  return encode(seq(...parts));
}

const responderKeyHashes = new WeakMap<Uint8Array, Buffer>();

/** Builds a successful OCSPResponse carrying a signed BasicOCSPResponse (4.2.1, 4.2.2). */
export async function buildOcspResponse(spec: OcspResponseSpec, signer: Signer): Promise<Buffer> {
  const alg = signatureAlgorithm(signer, spec.scheme);
  if (spec.responses.length === 0)
    fail("FR_VALIDATION", "an OCSP response needs at least one single response");
  let responderId: DerNode;
  if (spec.responderName) {
    responderId = explicit(1, encodeName(spec.responderName));
  } else {
    let hash: Uint8Array | undefined = spec.responderKeyHash ?? responderKeyHashes.get(signer.publicKey);
    if (!hash) {
      const computed = keyHash(signer.publicKey);
      responderKeyHashes.set(signer.publicKey, computed);
      hash = computed;
    }
    responderId = explicit(2, octetString(hash));
  }
  const responses = spec.responses.map((r) => (r instanceof Uint8Array ? r : encodeSingleResponse(r)));
  const data: DerNode[] = [responderId, generalizedTime(spec.producedAt), constructed(0x30, responses)];
  if (spec.nonce) data.push(explicit(1, seq(extension(OID.ocspNonce, false, spec.nonce))));
  const tbs = encode(seq(...data));
  const signature = await signer.sign(tbs, alg.scheme);
  const basic: DerNode[] = [tbs, alg.der, bitString(signature)];
  if (spec.certs?.length) basic.push(explicit(0, seq(...spec.certs)));
  return encode(seq(enumerated(0), explicit(0, seq(oid(OID.ocspBasic), octetString(encode(seq(...basic)))))));
}

/** OCSPResponseStatus values other than successful (4.2.1); 4 is unused. */
export const ocspErrorStatuses = {
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

export type OcspErrorStatus = keyof typeof ocspErrorStatuses;

const errorResponses = new Map<OcspErrorStatus, Buffer>();

/** An unsigned OCSPResponse with an error status and no responseBytes (4.2.1). */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  let hit = errorResponses.get(status);
  if (!hit) {
    const code = ocspErrorStatuses[status] as number | undefined;
    if (code === undefined) fail("FR_VALIDATION", `unknown OCSP response status "${status}"`);
    hit = encode(seq(enumerated(code)));
    errorResponses.set(status, hit);
  }
  return hit;
}
