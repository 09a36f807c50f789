/**
 * Key identifiers and key hashes, all over the subjectPublicKey BIT STRING value (without tag, length and
 * unused-bits octet): RFC 5280 4.2.1.2 method 1 (SHA-1), RFC 7093 section 2 method 1 (leftmost 160 bits
 * of SHA-256), and the RFC 6960 KeyHash / CertID issuerKeyHash.
 */
import { createHash } from "node:crypto";
import { DerReader } from "./der-reader.js";

export type KeyIdMethod = "sha1" | "rfc7093";

const spkiLimits = {
  maxBytes: 16 * 1024,
  maxDepth: 8,
  code: "FR_DER_INVALID",
  what: "the public key",
} as const;

/** The subjectPublicKey bits of a SubjectPublicKeyInfo. */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const r = new DerReader(spki, spkiLimits);
  const [alg, bits] = r.children(r.expect(r.root(), 0x30, "SubjectPublicKeyInfo"));
  r.expect(alg, 0x30, "algorithm");
  const b = r.expect(bits, 0x03, "subjectPublicKey");
  if (b.end - b.contentStart < 2 || r.buf[b.contentStart] !== 0) r.fail("subjectPublicKey has unused bits");
  return r.buf.subarray(b.contentStart + 1, b.end);
}

/** A key identifier for SKI/AKI. */
export function keyIdentifier(spki: Uint8Array, method: KeyIdMethod = "sha1"): Buffer {
  const bits = subjectPublicKeyBits(spki);
  if (method === "sha1") return createHash("sha1").update(bits).digest();
  return createHash("sha256").update(bits).digest().subarray(0, 20);
}

/** Hash of the key bits with a given digest (OCSP issuerKeyHash / responder KeyHash use SHA-1). */
export function keyHash(spki: Uint8Array, digest: "sha1" | "sha256" | "sha384" | "sha512" = "sha1"): Buffer {
  return createHash(digest).update(subjectPublicKeyBits(spki)).digest();
}
