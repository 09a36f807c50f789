/**
 * Complete and delta CRLs per issuer (RFC 5280 5.1, 5.2.4). The complete CRL is built from the issuer's
 * RevokedArena (one copy + one signature) on a schedule and always before its nextUpdate; a revocation is
 * appended to the arena and marks the delta CRL stale, so it shows in the next delta CRL (read from the
 * store: revocations at or after the complete CRL's build time) without rebuilding the complete one.
 */
import { type CrlReason, buildCrl, crlReasons } from "../crypto/index.js";
import type { Clock } from "../util/clock.js";
import type { CertStore } from "./cert-store.js";
import type { Issuer, IssuerRegistry } from "./issuers.js";
import { RevokedArena } from "./revoked-arena.js";

export interface CrlTiming {
  /** Seconds. */
  readonly validity: number;
  readonly rebuildInterval: number;
  readonly deltaValidity: number;
}

export interface BuiltCrl {
  readonly der: Buffer;
  readonly number: number;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
}

interface State {
  readonly arena: RevokedArena;
  full: (BuiltCrl & { builtAt: number }) | undefined;
  delta: (BuiltCrl & { base: number; builtAt: number }) | undefined;
  deltaDirty: boolean;
  /** Builds of one issuer run one after another. */
  lock: Promise<unknown>;
  loaded: Promise<void> | undefined;
}

const reasonNames = new Map<number, CrlReason>(
  Object.entries(crlReasons).map(([name, code]) => [code, name as CrlReason]),
);

export const reasonName = (code: number | null | undefined): CrlReason | undefined =>
  code === null || code === undefined ? undefined : reasonNames.get(code);

export class CrlService {
  private states = new Map<string, State>();

  constructor(
    private readonly d: {
      issuers: IssuerRegistry;
      certs: CertStore;
      clock: Clock;
      timing: CrlTiming;
    },
  ) {}

  private state(issuerId: string): State {
    let s = this.states.get(issuerId);
    if (!s) {
      s = {
        arena: new RevokedArena(),
        full: undefined,
        delta: undefined,
        deltaDirty: true,
        lock: Promise.resolve(),
        loaded: undefined,
      };
      this.states.set(issuerId, s);
    }
    return s;
  }

  private serialized<T>(s: State, fn: () => Promise<T>): Promise<T> {
    const run = s.lock.then(fn, fn);
    s.lock = run.catch(() => undefined);
    return run;
  }

  /** Loads an issuer's revoked, unexpired certificates from the store into a fresh arena. */
  private load(issuer: Issuer, s: State): Promise<void> {
    s.loaded ??= (async () => {
      const now = this.d.clock.now().getTime();
      for await (const page of this.d.certs.revoked(issuer.id, now, Number.MAX_SAFE_INTEGER)) {
        for (const r of page)
          s.arena.add(r.serial, Number(r.revoked_at), reasonName(r.revocation_reason), Number(r.not_after));
      }
    })();
    return s.loaded;
  }

  /** Drops all in-memory state (seal). */
  clear(): void {
    this.states.clear();
  }

  /**
   * Runs a revocation's store update under the issuer's lock and appends it to the loaded entries: loads
   * and builds take the same lock, so each revocation enters the arena exactly once — by the loader (if it
   * runs later) or here (if it ran before). O(1) whatever the number already revoked.
   */
  async revoke<T extends { changed: boolean; revokedAt: number; reason: number; notAfter: number }>(
    issuerId: string,
    serial: string,
    update: () => Promise<T>,
  ): Promise<T> {
    const s = this.state(issuerId);
    return this.serialized(s, async () => {
      const r = await update();
      const current = this.state(issuerId);
      if (r.changed && current.loaded)
        current.arena.add(serial, r.revokedAt, reasonName(r.reason), r.notAfter);
      current.deltaDirty = true;
      return r;
    });
  }

  /** The complete CRL, rebuilt first when due (schedule or nearing nextUpdate). */
  async full(issuer: Issuer): Promise<BuiltCrl> {
    const s = this.state(issuer.id);
    if (s.full && !this.due(s.full)) return s.full;
    return this.serialized(s, async () => {
      if (s.full && !this.due(s.full)) return s.full;
      return this.buildFull(issuer, s);
    });
  }

  /** Rebuilds the complete CRL now; with `reload`, from the store (picks up other nodes' revocations). */
  async rebuild(issuer: Issuer, reload = false): Promise<BuiltCrl> {
    const s = this.state(issuer.id);
    return this.serialized(s, async () => {
      if (reload) {
        const fresh: State = { ...s, arena: new RevokedArena(), loaded: undefined };
        this.states.set(issuer.id, fresh);
        const built = await this.buildFull(issuer, fresh);
        return built;
      }
      return this.buildFull(issuer, s);
    });
  }

  private due(c: BuiltCrl & { builtAt: number }): boolean {
    const now = this.d.clock.now().getTime();
    const t = this.d.timing;
    const margin = Math.min(t.rebuildInterval, t.validity / 4) * 1000;
    return now >= c.builtAt + t.rebuildInterval * 1000 || now >= c.nextUpdate - margin;
  }

  private async buildFull(issuer: Issuer, s: State): Promise<BuiltCrl> {
    await this.load(issuer, s);
    const now = this.d.clock.now().getTime();
    s.arena.dropExpired(now);
    const number = await this.d.issuers.nextCrlNumber(issuer.id);
    const thisUpdate = Math.floor(now / 1000) * 1000;
    const nextUpdate = thisUpdate + this.d.timing.validity * 1000;
    const der = await buildCrl(
      {
        issuerNameDer: issuer.parts.subject,
        issuerSki: issuer.keyId,
        thisUpdate: new Date(thisUpdate),
        nextUpdate: new Date(nextUpdate),
        crlNumber: number,
        entries: s.arena.size ? [s.arena.encoded()] : [],
      },
      issuer.signer,
    );
    s.full = { der, number, thisUpdate, nextUpdate, builtAt: now };
    s.deltaDirty = true;
    return s.full;
  }

  /** The delta CRL against the current complete CRL, rebuilt when a revocation happened or it ages. */
  async delta(issuer: Issuer): Promise<BuiltCrl> {
    const base = await this.full(issuer);
    const s = this.state(issuer.id);
    const fresh = () =>
      s.delta &&
      !s.deltaDirty &&
      s.delta.base === base.number &&
      this.d.clock.now().getTime() < s.delta.builtAt + Math.min(this.d.timing.deltaValidity * 500, 60_000);
    if (fresh()) return s.delta as BuiltCrl;
    return this.serialized(s, async () => {
      if (fresh()) return s.delta as BuiltCrl;
      s.deltaDirty = false;
      const full = s.full as BuiltCrl & { builtAt: number };
      const rows = await this.d.certs.revokedSince(issuer.id, full.builtAt);
      const now = this.d.clock.now().getTime();
      const number = await this.d.issuers.nextCrlNumber(issuer.id);
      const thisUpdate = Math.floor(now / 1000) * 1000;
      const nextUpdate = thisUpdate + this.d.timing.deltaValidity * 1000;
      const der = await buildCrl(
        {
          issuerNameDer: issuer.parts.subject,
          issuerSki: issuer.keyId,
          thisUpdate: new Date(thisUpdate),
          nextUpdate: new Date(nextUpdate),
          crlNumber: number,
          deltaOf: full.number,
          entries: rows.map((r) => {
            const reason = reasonName(r.revocation_reason);
            return {
              serial: Buffer.from(r.serial, "hex"),
              revokedAt: Number(r.revoked_at),
              ...(reason ? { reason } : {}),
            };
          }),
        },
        issuer.signer,
      );
      s.delta = { der, number, thisUpdate, nextUpdate, base: full.number, builtAt: now };
      return s.delta;
    });
  }

  /** The scheduler's tick: rebuilds every issuer's complete CRL that is due. */
  async tick(issuers: readonly Issuer[]): Promise<void> {
    for (const i of issuers) await this.full(i);
  }

  /** Entries currently in an issuer's complete-CRL state (for tests and metrics). */
  size(issuerId: string): number {
    return this.state(issuerId).arena.size;
  }
}
