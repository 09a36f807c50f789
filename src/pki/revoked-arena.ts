/**
 * The revoked-certificate entries of one issuer, kept pre-encoded (RFC 5280 5.1.2.6 revokedCertificates
 * entries) back to back in one growable buffer. Revoking one more appends one entry — amortized O(1)
 * whatever the list size — and a complete CRL is the whole buffer copied once into the CRL and signed
 * once. Expired certificates leave at the next rebuild (`dropExpired`), one linear pass that runs only when
 * the earliest expiry has passed. 1,000,000 entries take about 45 MB plus 12 bytes each of bookkeeping.
 */
import { type CrlReason, encodeCrlEntry } from "../crypto/index.js";

export class RevokedArena {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private starts = new Uint32Array(1024);
  private expiries = new Float64Array(1024);
  private n = 0;
  private earliest = Infinity;

  get size(): number {
    return this.n;
  }

  get bytes(): number {
    return this.used;
  }

  /** Appends one entry: `serialHex` revoked at `revokedAt` for `reason`, leaving the CRL after `notAfter`. */
  add(serialHex: string, revokedAt: number, reason: CrlReason | undefined, notAfter: number): void {
    const entry = encodeCrlEntry({
      serial: Buffer.from(serialHex, "hex"),
      revokedAt,
      ...(reason ? { reason } : {}),
    });
    if (this.used + entry.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + entry.length));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    if (this.n === this.starts.length) {
      const s = new Uint32Array(this.n * 2);
      s.set(this.starts);
      this.starts = s;
      const e = new Float64Array(this.n * 2);
      e.set(this.expiries);
      this.expiries = e;
    }
    entry.copy(this.buf, this.used);
    this.starts[this.n] = this.used;
    this.expiries[this.n] = notAfter;
    this.n++;
    this.used += entry.length;
    if (notAfter < this.earliest) this.earliest = notAfter;
  }

  /** Removes entries whose certificate expired before `now` (RFC 5280 5.1.2.6 lets them go). */
  dropExpired(now: number): number {
    if (this.earliest >= now) return 0;
    let w = 0;
    let kept = 0;
    let earliest = Infinity;
    for (let i = 0; i < this.n; i++) {
      const exp = this.expiries[i] as number;
      const start = this.starts[i] as number;
      const end = i + 1 < this.n ? (this.starts[i + 1] as number) : this.used;
      if (exp < now) continue;
      if (w !== start) this.buf.copy(this.buf, w, start, end);
      this.starts[kept] = w;
      this.expiries[kept] = exp;
      kept++;
      w += end - start;
      if (exp < earliest) earliest = exp;
    }
    const dropped = this.n - kept;
    this.n = kept;
    this.used = w;
    this.earliest = earliest;
    return dropped;
  }

  /** Every entry, encoded, as one view (valid until the next add or dropExpired). */
  encoded(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}
