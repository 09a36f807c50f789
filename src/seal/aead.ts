import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";

/**
 * The barrier's value format: version (1 byte) | term (uint32 BE) | nonce (12 bytes) | ciphertext | tag (16).
 * AES-256-GCM; the associated data is the 5-byte header followed by the caller's aad, so neither the
 * term nor the place a value is stored can be changed without failing authentication.
 */
export const FORMAT_VERSION = 1;
const HEADER = 5;
const NONCE = 12;
const TAG = 16;

/**
 * Random nonces drawn from one buffer filled by the CSPRNG 4 KiB at a time (one fill per 341 nonces
 * instead of one call each); every byte is handed out once. Owned by whoever seals, never shared.
 */
export class NonceSource {
  private pool = Buffer.alloc(0);
  private at = 0;

  /** Writes 12 fresh random bytes into out at offset `to`. */
  fill(out: Buffer, to: number): void {
    if (this.at + NONCE > this.pool.length) {
      this.pool = randomFillSync(Buffer.allocUnsafe(4096));
      this.at = 0;
    }
    this.pool.copy(out, to, this.at, this.at + NONCE);
    this.pool.fill(0, this.at, this.at + NONCE);
    this.at += NONCE;
  }
}

export function sealValue(
  key: Uint8Array,
  term: number,
  aad: string,
  plaintext: Uint8Array,
  nonces?: NonceSource,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER + NONCE + plaintext.length + TAG);
  out[0] = FORMAT_VERSION;
  out.writeUInt32BE(term, 1);
  if (nonces) nonces.fill(out, HEADER);
  else randomFillSync(out, HEADER, NONCE);
  const aadBytes = Buffer.allocUnsafe(HEADER + Buffer.byteLength(aad, "utf8"));
  out.copy(aadBytes, 0, 0, HEADER);
  aadBytes.write(aad, HEADER, "utf8");
  const cipher = createCipheriv("aes-256-gcm", key, out.subarray(HEADER, HEADER + NONCE));
  cipher.setAAD(aadBytes);
  // GCM is a stream mode: update() returns exactly as many bytes as it was given, final() none.
  cipher.update(plaintext).copy(out, HEADER + NONCE);
  cipher.final();
  cipher.getAuthTag().copy(out, HEADER + NONCE + plaintext.length);
  return out;
}

/** The term a value claims, or undefined when it is not in the barrier format at all. */
export function termOf(value: Uint8Array): number | undefined {
  if (value.length < HEADER + NONCE + TAG || value[0] !== FORMAT_VERSION) return undefined;
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(1);
}

/** Returns the plaintext, or undefined when authentication fails. */
export function openValue(key: Uint8Array, aad: string, value: Uint8Array): Buffer | undefined {
  if (termOf(value) === undefined) return undefined;
  const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const header = v.subarray(0, HEADER);
  const nonce = v.subarray(HEADER, HEADER + NONCE);
  const ct = v.subarray(HEADER + NONCE, v.length - TAG);
  const tag = v.subarray(v.length - TAG);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAAD(Buffer.concat([header, Buffer.from(aad, "utf8")]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    return undefined;
  }
}
