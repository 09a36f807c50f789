/**
 * Enrollment, renewal and decommissioning: the provisioner authorizes, the authority signs, the
 * registry records. Input is parsed and every proof checked before anything is written; the only
 * writes on the way are the single-use credentials being spent (nonce, join token).
 */
import { X509Certificate } from "node:crypto";
import type { ParsedCsr } from "../crypto/index.js";
import { type Device, certFingerprint } from "../devices/index.js";
import { FleetError, fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { DeviceAuthority, IssuedChain } from "./authority.js";
import type { Authorization, AuthorizeDeps } from "./authorize-types.js";
import { checkCsrKey } from "./device-key.js";
import { authorizeJoinToken } from "./provision-join-token.js";
import { authorizePsa } from "./provision-psa.js";
import { authorizeRegisteredKey } from "./provision-registered-key.js";
import { authorizeX509 } from "./provision-x509.js";
import type { ProvisionerConfig } from "./provisioner-config.js";
import type { ProvisionerStore } from "./provisioner-store.js";
import { type SignOptions, deviceNames } from "./sign-options.js";

const MAX_CSR_BYTES = 16 * 1024;

export interface EnrollServiceDeps extends AuthorizeDeps {
  readonly store: Store;
  readonly provisioners: ProvisionerStore;
  readonly authority: DeviceAuthority;
}

export interface EnrollResult {
  readonly device: Device;
  readonly issued: IssuedChain;
  readonly options: SignOptions;
  readonly audit: Record<string, string>;
}

export class EnrollService {
  constructor(private readonly d: EnrollServiceDeps) {}

  async enroll(provisionerName: unknown, body: Record<string, unknown>): Promise<EnrollResult> {
    if (typeof provisionerName !== "string" || !provisionerName)
      fail("FR_VALIDATION", "provisioner is required");
    const cfg = await this.d.provisioners.get(provisionerName);
    const csr = await this.d.authority.readCsr(body.csr, MAX_CSR_BYTES);
    checkCsrKey(csr.key);
    const auth = await this.authorize(cfg, { csr, body });
    try {
      const existing = await this.d.registry.find(auth.options.deviceId);
      if (existing && existing.status !== "pending" && existing.status !== "active") {
        fail("FR_DEVICE_STATE", `device "${existing.id}" is ${existing.status}; it cannot enroll`);
      }
      const issued = await this.d.authority.sign(auth.options, csr);
      const device = await this.record(auth, issued, cfg);
      return { device, issued, options: auth.options, audit: auth.audit };
    } catch (e) {
      await auth.undo?.();
      throw e;
    }
  }

  private authorize(
    cfg: ProvisionerConfig,
    req: { csr: ParsedCsr; body: Record<string, unknown> },
  ): Promise<Authorization> {
    switch (cfg.type) {
      case "join-token":
        return authorizeJoinToken(this.d, cfg, req);
      case "registered-key":
        return authorizeRegisteredKey(this.d, cfg, req);
      case "x509":
        return authorizeX509(this.d, cfg, req);
      case "psa":
        return authorizePsa(this.d, cfg, req);
    }
  }

  /** Device (if new) and certificate land together; if they cannot, the certificate is revoked. */
  private async record(auth: Authorization, issued: IssuedChain, cfg: ProvisionerConfig): Promise<Device> {
    const id = auth.options.deviceId;
    try {
      await this.d.store.transaction(async (trx) => {
        if (auth.newDevice) {
          await this.d.registry.create({ ...auth.newDevice, method: cfg.type, provisioner: cfg.name }, trx);
        }
        await this.d.registry.addCertificate(id, toIssued(issued), trx, {
          method: cfg.type,
          provisioner: cfg.name,
        });
      });
    } catch (e) {
      await this.d.authority.revoke(issued.issuerId, issued.serial, "superseded").catch(() => undefined);
      throw e;
    }
    return this.d.registry.get(id);
  }

  /**
   * Renewal over mutual TLS: `peerDer` is the client certificate from the TLS handshake (which proved
   * its key). It must be the device's current certificate, unrevoked, and unexpired — or expired less
   * than the provisioner's renew_grace ago. The CSR carries the same key or a new one (rekey).
   */
  async renew(peerDer: Buffer | undefined, body: Record<string, unknown>): Promise<EnrollResult> {
    const deny = (why: string): never => fail("FR_RENEW_DENIED", why);
    if (!peerDer?.length)
      deny("renewal needs mutual TLS: present the current device certificate as the TLS client certificate");
    const cert = await this.d.registry.certificateByFingerprint(certFingerprint(peerDer!));
    if (!cert) return deny("the client certificate is not a device certificate issued by this server");
    const csr = await this.d.authority.readCsr(body.csr, MAX_CSR_BYTES);
    checkCsrKey(csr.key);
    const device = await this.d.registry.get(cert.deviceId);
    if (device.status !== "active") deny(`device "${device.id}" is ${device.status}`);
    if (cert.revokedAt !== null || (await this.d.authority.isRevoked(cert.issuerId, cert.serial))) {
      deny(`certificate ${cert.serial} is revoked`);
    }
    // The current certificate, or the one it replaced: an agent that lost the answer to its last renewal
    // (crash, network) still holds only the previous pair. Anything older is refused.
    const recent = (await this.d.registry.certificates(device.id)).slice(0, 2);
    if (!recent.some((c) => c.fingerprint === cert.fingerprint)) {
      deny(`certificate ${cert.serial} has been replaced; renew with the device's current certificate`);
    }
    const cfg =
      (device.provisioner ? await this.d.provisioners.find(device.provisioner) : undefined) ??
      deny(`the device's provisioner "${device.provisioner ?? ""}" no longer exists; enroll again`);
    const now = this.d.clock.now().getTime();
    const grace = cfg.renew_grace * 1000;
    if (now < cert.notBefore) deny("the certificate is not valid yet");
    if (now > cert.notAfter + grace) {
      deny(
        `certificate ${cert.serial} expired at ${new Date(cert.notAfter).toISOString()}` +
          (grace
            ? ` (grace ${grace / 1000}s)`
            : "; this provisioner allows no renewal after expiry: enroll again"),
      );
    }
    const currentSpki = Buffer.from(
      new X509Certificate(cert.der).publicKey.export({ format: "der", type: "spki" }),
    );
    const rekey = !currentSpki.equals(csr.publicKey);
    const options: SignOptions = {
      method: "renewal",
      role: cfg.role,
      deviceId: device.id,
      ttlSeconds: cfg.ttl,
      dnsSans: [],
      provisioner: cfg.name,
      previousSerial: cert.serial,
      rekey,
      ...deviceNames(device.id),
    };
    const issued = await this.d.authority.sign(options, csr);
    try {
      await this.d.registry.addCertificate(device.id, toIssued(issued));
    } catch (e) {
      // Not recorded (the device was suspended or decommissioned meanwhile): the new certificate must
      // not stay valid either.
      await this.d.authority.revoke(issued.issuerId, issued.serial, "superseded").catch(() => undefined);
      if (e instanceof FleetError && e.code === "FR_DEVICE_STATE") deny(e.message);
      throw e;
    }
    return {
      device: await this.d.registry.get(device.id),
      issued,
      options,
      audit: { previous_serial: cert.serial, rekey: String(rekey) },
    };
  }

  /**
   * Decommissioning: the device is marked first (no renewal or enrollment from then on), then every
   * certificate not yet revoked is revoked through pki/ (CRL and OCSP at once). Running it again
   * finishes a decommissioning that was interrupted.
   */
  async decommission(id: string): Promise<{ device: Device; revoked: string[] }> {
    await this.d.registry.transition(
      id,
      ["pending", "active", "suspended", "decommissioned"],
      "decommissioned",
    );
    await this.d.tokens.spendForDevice(id);
    const revoked: string[] = [];
    const now = this.d.clock.now().getTime();
    for (const c of await this.d.registry.certificates(id)) {
      if (c.revokedAt !== null) continue;
      try {
        await this.d.authority.revoke(c.issuerId, c.serial, "cessationOfOperation");
      } catch (e) {
        throw new FleetError(
          "FR_INTERNAL",
          `revoking certificate ${c.serial} failed; run decommission again`,
          { cause: e },
        );
      }
      await this.d.registry.markRevoked(c.issuerId, c.serial, now);
      revoked.push(c.serial);
    }
    return { device: await this.d.registry.get(id), revoked };
  }
}

function toIssued(i: IssuedChain) {
  return {
    issuerId: i.issuerId,
    serial: i.serial,
    der: i.certificate,
    notBefore: i.notBefore,
    notAfter: i.notAfter,
  };
}
