import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NonceSource, openValue, sealValue, termOf } from "./aead.js";

/** The format written out the plain way, for a given nonce: what sealValue must produce byte for byte. */
function reference(key: Buffer, term: number, aad: string, pt: Buffer, nonce: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 1;
  header.writeUInt32BE(term, 1);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.concat([header, Buffer.from(aad, "utf8")]));
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return Buffer.concat([header, nonce, ct, c.getAuthTag()]);
}

describe("barrier value format (AES-256-GCM)", () => {
  it("matches the format built with one cipher call per part, with and without a nonce source", () => {
    const key = randomBytes(32);
    const nonces = new NonceSource();
    for (const len of [0, 1, 15, 16, 17, 100, 4096, 70_000]) {
      for (const src of [nonces, undefined]) {
        const pt = randomBytes(len);
        const aad = `secrets/kv/ü-${len}/v1`;
        const v = sealValue(key, 7, aad, pt, src);
        expect(v).toEqual(reference(key, 7, aad, pt, v.subarray(5, 17)));
        expect(termOf(v)).toBe(7);
        expect(openValue(key, aad, v)).toEqual(pt);
      }
    }
  });

  it("never hands out the same nonce twice, across pool refills", () => {
    const key = randomBytes(32);
    const nonces = new NonceSource();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const v = sealValue(key, 1, "a", Buffer.from("x"), nonces);
      seen.add(v.subarray(5, 17).toString("hex"));
    }
    expect(seen.size).toBe(2000);
  });

  it("refuses a value moved to another place, with a changed term, or tampered with", () => {
    const key = randomBytes(32);
    const v = sealValue(key, 3, "here", Buffer.from("secret"), new NonceSource());
    expect(openValue(key, "there", v)).toBeUndefined();
    const term = Buffer.from(v);
    term.writeUInt32BE(4, 1);
    expect(openValue(key, "here", term)).toBeUndefined();
    for (const at of [6, 17, v.length - 1]) {
      const bad = Buffer.from(v);
      bad[at]! ^= 1;
      expect(openValue(key, "here", bad)).toBeUndefined();
    }
    expect(openValue(randomBytes(32), "here", v)).toBeUndefined();
    expect(openValue(key, "here", v.subarray(0, 20))).toBeUndefined();
  });
});
