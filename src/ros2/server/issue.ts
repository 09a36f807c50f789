/**
 * `ros2/enclave`: who is asking (the device behind the TLS client certificate, as renewal identifies it)
 * and what it gets (an enclave certificate from the identity CA for the robot's own key, and the
 * permissions of its assigned policy signed by the permissions CA).
 */
import { X509Certificate } from "node:crypto";
import {
  type ParsedCsr,
  buildCertificate,
  certificateParts,
  derFrom,
  parseCsr,
  randomSerial,
  serialHex,
  toPem,
  verifyCsrSignature,
} from "../../crypto/index.js";
import { type Device, type DeviceRegistry, certFingerprint } from "../../devices/index.js";
import { fail } from "../../errors/index.js";
import type { PkiServices } from "../../pki/index.js";
import type { Clock } from "../../util/clock.js";
import { checkEnclaveName } from "../layout.js";
import { grantsFromPolicy, permissionsXml } from "../permissions.js";
import { type Policy, parsePolicy } from "../policy.js";
import { signSmime } from "../smime.js";
import type { CaSigners } from "./cas.js";
import type { FleetConfig } from "./store.js";

const MAX_CSR_BYTES = 16 * 1024;
const BACKDATE_MS = 60_000;
const deny = (why: string): never => fail("FR_ROS2_FLEET_DENIED", why);

/**
 * The device presenting `peerDer` over mutual TLS. As for renewal (src/enroll/service.ts): a device
 * certificate this server issued, one of the device's two newest, unrevoked (also through pki/revoke), in
 * validity, and the device active — suspended and decommissioned devices get nothing.
 */
export async function deviceFromPeer(
  registry: DeviceRegistry,
  pki: PkiServices | undefined,
  clock: Clock,
  peerDer: Buffer | undefined,
): Promise<Device> {
  if (!peerDer?.length) {
    deny(
      "ros2/enclave needs mutual TLS: present the device certificate (agent enroll --out) as the client certificate",
    );
  }
  const cert = await registry.certificateByFingerprint(certFingerprint(peerDer!));
  if (!cert) return deny("the client certificate is not a device certificate issued by this server");
  const device = await registry.get(cert.deviceId);
  if (device.status !== "active") deny(`device "${device.id}" is ${device.status}`);
  const status = await pki?.certs.status(cert.issuerId, cert.serial);
  if (cert.revokedAt !== null || (status?.revoked_at !== null && status?.revoked_at !== undefined)) {
    deny(`device certificate ${cert.serial} is revoked`);
  }
  const recent = (await registry.certificates(device.id)).slice(0, 2);
  if (!recent.some((c) => c.fingerprint === cert.fingerprint)) {
    deny(`device certificate ${cert.serial} has been replaced; use the device's current certificate`);
  }
  const now = clock.now().getTime();
  if (now < cert.notBefore || now > cert.notAfter) {
    deny(`device certificate ${cert.serial} is not valid now; renew it (agent run) first`);
  }
  return device;
}

/**
 * A stored policy: sros2's XML, checked by the same function as the CLI's policy files (policy.ts), so the
 * server stores exactly what `ros2 generate` would accept. XInclude is refused on the server (it would read
 * the server's files); expand includes before uploading (`ros2 fleet policy write` does).
 */
export function parseStoredPolicy(xml: string, name: string): Policy {
  return parsePolicy(xml, { name: `policy ${name}`, xinclude: false });
}

export function readEnclaveCsr(input: unknown, enclave: string): ParsedCsr {
  if (typeof input !== "string" || !input)
    fail("FR_VALIDATION", "csr is required: the enclave key's PEM CSR");
  const csr = parseCsr(input, { maxBytes: MAX_CSR_BYTES });
  verifyCsrSignature(csr);
  const cn = csr.subject.attributes.find((a) => a.type === "CN")?.value;
  if (cn !== undefined && cn !== enclave) {
    deny(
      `the CSR asks for CN "${cn.slice(0, 64)}"; leave the subject empty or use the enclave name ${enclave}`,
    );
  }
  return csr;
}

export interface IssuedEnclave {
  readonly enclave: string;
  readonly certificate: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly permissionsXml: string;
  readonly permissionsP7s: string;
}

/** Signs the enclave certificate and its permissions; the policy must name the enclave. */
export async function issueEnclave(
  cfg: FleetConfig,
  signers: CaSigners,
  clock: Clock,
  req: { enclave: string; csr: ParsedCsr; policy: Policy; policyName: string },
): Promise<IssuedEnclave> {
  const enclave = checkEnclaveName(req.enclave);
  if (!req.policy.enclaves.some((e) => e.path === enclave)) {
    deny(
      `policy "${req.policyName}" has no enclave ${enclave}; it grants ${req.policy.enclaves.map((e) => e.path).join(", ")}`,
    );
  }
  const idDer = derFrom(cfg.identity.certificate, "CERTIFICATE");
  const permDer = derFrom(cfg.permissions.certificate, "CERTIFICATE");
  const now = clock.now();
  const caEnd = Date.parse(new X509Certificate(idDer).validTo);
  const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  // An enclave certificate never outlives its CA; the permissions are valid exactly as long (as sros2).
  const notAfter = new Date(
    Math.min(Math.floor((now.getTime() + cfg.settings.enclaveTtlSeconds * 1000) / 1000) * 1000, caEnd),
  );
  const certDer = await buildCertificate(
    {
      serial: randomSerial(),
      subject: [{ type: "CN", value: enclave }],
      notBefore,
      notAfter,
      publicKey: req.csr.publicKey,
      issuer: { certificate: idDer },
    },
    await signers.get(cfg.identity.keyUri),
  );
  const grants = grantsFromPolicy(
    req.policy,
    { notBefore, notAfter, domains: cfg.settings.domains, rosDiscoveryInfo: cfg.settings.rosDiscoveryInfo },
    [enclave],
  );
  const xml = permissionsXml(grants);
  const p7s = await signSmime(xml, permDer, await signers.get(cfg.permissions.keyUri), now);
  return {
    enclave,
    certificate: toPem(certDer, "CERTIFICATE"),
    serial: serialHex(certificateParts(certDer).serial),
    notBefore,
    notAfter,
    permissionsXml: xml,
    permissionsP7s: p7s,
  };
}
