/**
 * The OCSP responder (RFC 6960). Each CertID is matched to an issuer by its name and key hashes (4.1.1);
 * the status comes from the store: good, revoked (time, reason) or unknown. Responses are signed by the
 * issuer's delegated OCSP certificate when it has one (4.2.2.2, the certificate is included), else by the
 * issuer itself. A request without a nonce for one certificate gets the cached signed response while its
 * status is unchanged and it is not near expiry; a revocation drops that certificate's cached responses.
 * The cache is keyed by the request's bytes, so a repeated request is answered without being parsed.
 */
import {
  type OcspCertStatus,
  type OcspRequest,
  buildOcspResponse,
  ocspErrorResponse,
  parseOcspRequest,
} from "../crypto/index.js";
import { isFleetError } from "../errors/index.js";
import type { Clock } from "../util/clock.js";
import type { CertStore } from "./cert-store.js";
import { reasonName } from "./crl.js";
import type { Issuer, IssuerRegistry } from "./issuers.js";

interface Cached {
  readonly der: Buffer;
  readonly refreshAt: number;
}

const MAX_CACHED = 100_000;
/** Larger requests (many CertIDs, extensions) are never cached, so are not keyed either. */
const MAX_KEYED_REQUEST = 1024;

export class OcspResponder {
  /** Request DER as latin1 → response, for single-CertID requests without a nonce. */
  private readonly cache = new Map<string, Cached>();
  /** serial hex → the cache keys of requests for it (dropped on revocation). */
  private readonly keysBySerial = new Map<string, string[]>();

  constructor(
    private readonly d: {
      issuers: IssuerRegistry;
      certs: CertStore;
      clock: Clock;
      /** Seconds between thisUpdate and nextUpdate. */
      validity: number;
    },
  ) {}

  /** Drops cached responses for a serial (on revocation). */
  invalidate(serial: string): void {
    const keys = this.keysBySerial.get(serial);
    if (!keys) return;
    for (const k of keys) this.cache.delete(k);
    this.keysBySerial.delete(serial);
  }

  clear(): void {
    this.cache.clear();
    this.keysBySerial.clear();
  }

  /** Answers one DER OCSPRequest with a DER OCSPResponse (error statuses unsigned, 4.2.1). */
  async respond(der: Uint8Array): Promise<Buffer> {
    const now = this.d.clock.now().getTime();
    const key =
      der.length <= MAX_KEYED_REQUEST
        ? Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("latin1")
        : undefined;
    if (key !== undefined) {
      const hit = this.cache.get(key);
      if (hit && now < hit.refreshAt) return hit.der;
    }
    let req: OcspRequest;
    try {
      req = parseOcspRequest(der);
    } catch (e) {
      if (isFleetError(e)) return ocspErrorResponse("malformedRequest");
      throw e;
    }
    const single = req.certIds.length === 1 && !req.nonce ? req.certIds[0] : undefined;
    let issuer: Issuer | undefined;
    for (const id of req.certIds) {
      const match = this.issuerOf(id.hashAlgorithm, id.issuerNameHash, id.issuerKeyHash);
      // One response is signed by one responder: every CertID must belong to the same issuer.
      if (!match || (issuer && match !== issuer)) return ocspErrorResponse("unauthorized");
      issuer = match;
    }
    if (!issuer) return ocspErrorResponse("unauthorized");
    const thisUpdate = Math.floor(now / 1000) * 1000;
    const nextUpdate = thisUpdate + this.d.validity * 1000;
    const responses = [];
    for (const id of req.certIds) {
      responses.push({
        certId: id,
        status: await this.status(issuer, id.serialHex),
        thisUpdate: new Date(thisUpdate),
        nextUpdate: new Date(nextUpdate),
      });
    }
    const signer = issuer.ocsp?.signer ?? issuer.signer;
    const out = await buildOcspResponse(
      {
        producedAt: new Date(thisUpdate),
        responses,
        ...(req.nonce ? { nonce: req.nonce } : {}),
        ...(issuer.ocsp ? { certs: [issuer.ocsp.certificate] } : {}),
      },
      signer,
    );
    if (single && key !== undefined) this.remember(single.serialHex, key, out, thisUpdate, nextUpdate);
    return out;
  }

  private remember(serial: string, key: string, der: Buffer, thisUpdate: number, nextUpdate: number): void {
    if (this.cache.size >= MAX_CACHED) this.clear();
    if (!this.cache.has(key)) {
      const keys = this.keysBySerial.get(serial);
      if (keys) keys.push(key);
      else this.keysBySerial.set(serial, [key]);
    }
    // Reused for the first half of its validity, so a client never gets one close to nextUpdate.
    this.cache.set(key, { der, refreshAt: thisUpdate + (nextUpdate - thisUpdate) / 2 });
  }

  private issuerOf(hash: string, nameHash: Uint8Array, keyHash: Uint8Array): Issuer | undefined {
    const name = Buffer.from(nameHash).toString("hex");
    const key = Buffer.from(keyHash).toString("hex");
    for (const i of this.d.issuers.all()) {
      const h = i.certIdHashes.get(hash as "sha1");
      if (h && h.key === key && h.name === name) return i;
    }
    return undefined;
  }

  private async status(issuer: Issuer, serial: string): Promise<OcspCertStatus> {
    const row = await this.d.certs.status(issuer.id, serial);
    if (!row) return "unknown";
    if (row.revoked_at === null || row.revoked_at === undefined) return "good";
    const reason = reasonName(row.revocation_reason);
    return { revoked: { time: new Date(Number(row.revoked_at)), ...(reason ? { reason } : {}) } };
  }
}
