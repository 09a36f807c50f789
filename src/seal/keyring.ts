import { randomBytes } from "node:crypto";

/** One barrier encryption key. Terms count up from 1; only the highest encrypts new values. */
export interface KeyTerm {
  readonly term: number;
  readonly key: Buffer;
  readonly installMs: number;
}

export interface Keyring {
  readonly terms: readonly KeyTerm[];
}

const KEYRING_VERSION = 1;
const KEY_LEN = 32;
const ENTRY_LEN = 4 + 8 + KEY_LEN;

export function newKeyring(nowMs: number): Keyring {
  return { terms: [{ term: 1, key: randomBytes(KEY_LEN), installMs: nowMs }] };
}

export function activeTerm(ring: Keyring): KeyTerm {
  return ring.terms.reduce((a, b) => (b.term > a.term ? b : a));
}

export function withNewTerm(ring: Keyring, nowMs: number): Keyring {
  const term = activeTerm(ring).term + 1;
  return { terms: [...ring.terms, { term, key: randomBytes(KEY_LEN), installMs: nowMs }] };
}

/**
 * Binary, not JSON, so the serialized form is a Buffer that can be zeroed after use:
 * version (1) | count (uint32 BE) | count × (term uint32 BE | install ms uint64 BE | key 32).
 */
export function encodeKeyring(ring: Keyring): Buffer {
  const out = Buffer.alloc(5 + ring.terms.length * ENTRY_LEN);
  out[0] = KEYRING_VERSION;
  out.writeUInt32BE(ring.terms.length, 1);
  ring.terms.forEach((t, i) => {
    const o = 5 + i * ENTRY_LEN;
    out.writeUInt32BE(t.term, o);
    out.writeBigUInt64BE(BigInt(t.installMs), o + 4);
    t.key.copy(out, o + 12);
  });
  return out;
}

/** Returns undefined when the bytes are not a keyring (they were authenticated, so this means a bug). */
export function decodeKeyring(buf: Buffer): Keyring | undefined {
  if (buf.length < 5 || buf[0] !== KEYRING_VERSION) return undefined;
  const n = buf.readUInt32BE(1);
  if (n < 1 || buf.length !== 5 + n * ENTRY_LEN) return undefined;
  const terms: KeyTerm[] = [];
  for (let i = 0; i < n; i++) {
    const o = 5 + i * ENTRY_LEN;
    terms.push({
      term: buf.readUInt32BE(o),
      installMs: Number(buf.readBigUInt64BE(o + 4)),
      key: Buffer.from(buf.subarray(o + 12, o + 12 + KEY_LEN)),
    });
  }
  return { terms };
}

export function zeroKeyring(ring: Keyring | undefined): void {
  for (const t of ring?.terms ?? []) t.key.fill(0);
}
