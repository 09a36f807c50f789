import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * The barrier's value format: version (1 byte) | term (uint32 BE) | nonce (12 bytes) | ciphertext | tag (16).
 * AES-256-GCM; the associated data is the 5-byte header followed by the caller's aad, so neither the
 * term nor the place a value is stored can be changed without failing authentication.
 */
export const FORMAT_VERSION = 1;
const HEADER = 5;
const NONCE = 12;
const TAG = 16;

export function sealValue(key: Uint8Array, term: number, aad: string, plaintext: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER);
  header[0] = FORMAT_VERSION;
  header.writeUInt32BE(term, 1);
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.concat([header, Buffer.from(aad, "utf8")]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, nonce, ct, cipher.getAuthTag()]);
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
