/**
 * Revocation of fleet-issued enclave certificates. Every certificate `ros2/enclave` signs is recorded
 * (`enclaves/<device>/<serial>` in the module's barrier view), and each identity CA has one revocation list
 * (`crl/<CA key id>`: CRL number, entries, and the signed CRL) that `ros2/crl` serves and robots copy into
 * their enclaves as crl.pem (Cyclone DDS `Security/Authentication/CRL`).
 *
 * Writes are serialized in this process; two nodes on one PostgreSQL revoking at the same instant can each
 * sign a CRL with the same number (docs/ros2.md "Not done yet").
 */
import {
  type CrlReason,
  buildCrl,
  certificateParts,
  derFrom,
  keyIdentifier,
  toPem,
} from "../../crypto/index.js";
import { fail } from "../../errors/index.js";
import type { BarrierView } from "../../seal/index.js";
import type { Clock } from "../../util/clock.js";
import type { CaSigners } from "./cas.js";
import type { FleetConfig } from "./store.js";

/** One fleet-issued enclave certificate. Times are epoch milliseconds. */
export interface EnclaveRecord {
  readonly deviceId: string;
  readonly enclave: string;
  /** Lower-case hex, as `serial_number` in the `ros2/enclave` answer. */
  readonly serial: string;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly revokedAt?: number;
  readonly reason?: CrlReason;
}

interface CrlEntry {
  readonly serial: string;
  readonly revokedAt: number;
  readonly reason?: CrlReason;
}

/** The revocation list of one identity CA, with the CRL last signed over it. */
interface CrlState {
  readonly version: 1;
  readonly crlNumber: number;
  readonly entries: readonly CrlEntry[];
  readonly der: string;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
}

export interface SignedCrl {
  readonly der: Buffer;
  readonly crlNumber: number;
  readonly nextUpdate: number;
}

/** A CRL is valid this long; `ros2/crl` signs a fresh one once half of that has passed. */
export const CRL_VALIDITY_MS = 7 * 24 * 3600_000;

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = <T>(b: Uint8Array | undefined): T | undefined =>
  b ? (JSON.parse(new TextDecoder().decode(b)) as T) : undefined;
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

export class FleetRevocations {
  // Revocations and CRL refreshes in this process run one at a time (CRL numbers must increase).
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly view: BarrierView,
    private readonly signers: CaSigners,
    private readonly clock: Clock,
  ) {}

  async record(r: Omit<EnclaveRecord, "issuedAt">): Promise<void> {
    const rec: EnclaveRecord = { ...r, issuedAt: this.clock.now().getTime() };
    await this.view.put(`enclaves/${r.deviceId}/${r.serial}`, enc(rec));
  }

  async records(deviceId: string): Promise<EnclaveRecord[]> {
    const out: EnclaveRecord[] = [];
    for (const k of await this.view.list(`enclaves/${deviceId}/`)) {
      const r = dec<EnclaveRecord>(await this.view.get(k));
      if (r) out.push(r);
    }
    return out;
  }

  /**
   * Revokes the device's enclave certificates (all, or those of `enclave`) and re-signs the CRL when one
   * was not yet revoked. Returns the serials revoked now and every matching serial; running it again
   * revokes nothing more. `cfg` is read only when something is to be revoked.
   */
  revoke(
    cfg: () => Promise<FleetConfig>,
    req: { deviceId: string; enclave?: string | undefined; reason?: CrlReason | undefined },
  ): Promise<{ revoked: string[]; serials: string[]; crlNumber: number | undefined }> {
    return this.serial(async () => {
      const all = (await this.records(req.deviceId)).filter(
        (r) => req.enclave === undefined || r.enclave === req.enclave,
      );
      if (req.enclave !== undefined && all.length === 0) {
        fail(
          "FR_NOT_FOUND",
          `device "${req.deviceId}" has no fleet-issued certificate for enclave ${req.enclave}`,
        );
      }
      const now = seconds(this.clock.now().getTime());
      const fresh = all.filter((r) => r.revokedAt === undefined);
      if (fresh.length === 0) return { revoked: [], serials: all.map((r) => r.serial), crlNumber: undefined };
      const config = await cfg();
      const state = await this.state(config);
      const known = new Set(state?.entries.map((e) => e.serial));
      const entries = [
        ...(state?.entries ?? []),
        ...fresh
          .filter((r) => !known.has(r.serial))
          .map((r) => ({ serial: r.serial, revokedAt: now, ...(req.reason ? { reason: req.reason } : {}) })),
      ];
      // The CRL first: a record marked revoked whose serial is missing from the CRL would never be listed.
      const signed = await this.sign(config, state, entries);
      for (const r of fresh) {
        const next: EnclaveRecord = { ...r, revokedAt: now, ...(req.reason ? { reason: req.reason } : {}) };
        await this.view.put(`enclaves/${r.deviceId}/${r.serial}`, enc(next));
      }
      return {
        revoked: fresh.map((r) => r.serial),
        serials: all.map((r) => r.serial),
        crlNumber: signed.crlNumber,
      };
    });
  }

  /** The identity CA's current CRL, signed afresh when there is none or half its validity has passed. */
  current(cfg: FleetConfig): Promise<SignedCrl> {
    return this.serial(async () => {
      const state = await this.state(cfg);
      const now = this.clock.now().getTime();
      if (state && now < state.nextUpdate - CRL_VALIDITY_MS / 2 && now >= state.thisUpdate) {
        return {
          der: Buffer.from(state.der, "base64"),
          crlNumber: state.crlNumber,
          nextUpdate: state.nextUpdate,
        };
      }
      return this.sign(cfg, state, state?.entries ?? []);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private caKey(cfg: FleetConfig): { parts: ReturnType<typeof certificateParts>; id: Uint8Array } {
    const parts = certificateParts(derFrom(cfg.identity.certificate, "CERTIFICATE"));
    return { parts, id: parts.subjectKeyId ?? keyIdentifier(parts.spki) };
  }

  private async state(cfg: FleetConfig): Promise<CrlState | undefined> {
    return dec<CrlState>(await this.view.get(`crl/${Buffer.from(this.caKey(cfg).id).toString("hex")}`));
  }

  private async sign(
    cfg: FleetConfig,
    prev: CrlState | undefined,
    entries: readonly CrlEntry[],
  ): Promise<SignedCrl> {
    const { parts, id } = this.caKey(cfg);
    const now = seconds(this.clock.now().getTime());
    const crlNumber = (prev?.crlNumber ?? 0) + 1;
    const nextUpdate = now + CRL_VALIDITY_MS;
    const der = await buildCrl(
      {
        issuerNameDer: parts.subject,
        issuerSki: id,
        thisUpdate: new Date(now),
        nextUpdate: new Date(nextUpdate),
        crlNumber,
        entries: entries.map((e) => ({
          serial: Buffer.from(e.serial.length % 2 ? `0${e.serial}` : e.serial, "hex"),
          revokedAt: new Date(e.revokedAt),
          ...(e.reason ? { reason: e.reason } : {}),
        })),
      },
      await this.signers.get(cfg.identity.keyUri),
    );
    const state: CrlState = {
      version: 1,
      crlNumber,
      entries,
      der: der.toString("base64"),
      thisUpdate: now,
      nextUpdate,
    };
    await this.view.put(`crl/${Buffer.from(id).toString("hex")}`, enc(state));
    return { der, crlNumber, nextUpdate };
  }
}

export const crlPem = (der: Uint8Array): string => toPem(der, "X509 CRL");
