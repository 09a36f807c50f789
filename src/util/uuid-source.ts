import { randomFillSync } from "node:crypto";

/** UUIDs drawn from one refill of random bytes. */
const BATCH = 256;
const HEX = Buffer.from("0123456789abcdef", "latin1");

/**
 * Random (version 4, RFC 9562) UUIDs in their 36-character lowercase form, for ids made on every request.
 * Random bytes are drawn from the CSPRNG for 256 UUIDs at a time, and each UUID is written as ASCII into a
 * small buffer and read back as one string: no per-character string pieces to build and join, which on
 * the request path cost about twice the time of this and ~600 bytes of garbage per id. Not for secrets:
 * the bytes of an id are public once it is sent.
 */
export class UuidSource {
  private readonly pool = Buffer.alloc(16 * BATCH);
  private next = BATCH;
  private readonly text = Buffer.alloc(36);

  uuid(): string {
    if (this.next === BATCH) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    const pool = this.pool;
    const text = this.text;
    const at = this.next++ * 16;
    let j = 0;
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // "-"
      let b = pool[at + i]!;
      if (i === 6)
        b = (b & 0x0f) | 0x40; // version 4
      else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10xx
      text[j++] = HEX[b >> 4]!;
      text[j++] = HEX[b & 0x0f]!;
    }
    return text.toString("latin1", 0, 36);
  }
}
