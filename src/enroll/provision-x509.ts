import { checkDeviceId } from "../devices/index.js";
import { fromPem } from "../crypto/index.js";
import { fail } from "../errors/index.js";
import type { Authorize } from "./authorize-types.js";
import { NonceStore } from "./nonces.js";
import { checkPossession } from "./proof.js";
import { deviceNames } from "./sign-options.js";
import { MAX_CHAIN, parseCert, validatePath } from "./x509-path.js";

const MAX_CHAIN_TEXT = 128 * 1024;

/** `chain`: one PEM bundle or a list of PEM certificates, device certificate first. */
export function readChain(input: unknown): Buffer[] {
  const text = Array.isArray(input) && input.every((x) => typeof x === "string") ? input.join("\n") : input;
  if (typeof text !== "string" || !text.includes("-----BEGIN CERTIFICATE-----")) {
    fail("FR_ENROLL_MALFORMED", "chain must hold the device certificate and its intermediates as PEM");
  }
  if (text.length > MAX_CHAIN_TEXT)
    fail("FR_ENROLL_MALFORMED", `chain is longer than ${MAX_CHAIN_TEXT} characters`);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) fail("FR_ENROLL_MALFORMED", "chain holds no complete PEM certificate");
  if (blocks.length > MAX_CHAIN + 1)
    fail("FR_ENROLL_MALFORMED", `chain holds more than ${MAX_CHAIN} certificates`);
  return blocks.map((b) => {
    try {
      return fromPem(b, "CERTIFICATE").der;
    } catch (e) {
      return fail("FR_ENROLL_MALFORMED", `a chain certificate is not valid PEM: ${(e as Error).message}`);
    }
  });
}

/**
 * x509 (IEEE 802.1AR IDevID → LDevID): the device shows its factory certificate chain up to a
 * manufacturer CA registered with this provisioner, and proves it holds the IDevID key by signing the
 * server nonce and CSR hash. The device id comes from the IDevID by the provisioner's rule.
 */
export const authorizeX509: Authorize<"x509"> = async (deps, cfg, req) => {
  const nonce = NonceStore.decode(req.body.nonce);
  const chain = readChain(req.body.chain);
  const top = parseCert(chain[chain.length - 1]!, "the last chain certificate");
  let chosen: { name: string; certificate: Buffer; crl: Buffer | undefined } | undefined;
  for (const name of cfg.manufacturers) {
    const m = await deps.identities.manufacturer(name);
    if (!m) continue;
    const anchor = parseCert(m.certificate, "the manufacturer CA certificate");
    if (top.der.equals(anchor.der) || top.x509.checkIssued(anchor.x509)) {
      chosen = m;
      break;
    }
  }
  if (!chosen) {
    fail(
      "FR_ENROLL_CHAIN",
      `the chain is not issued by a manufacturer registered with provisioner "${cfg.name}"`,
    );
  }
  const leaf = validatePath({ chain, anchor: chosen.certificate, crl: chosen.crl, at: deps.clock.now() });
  checkPossession(leaf.spki, req.body, nonce, req.csr.der, "the IDevID certificate's key");
  await deps.nonces.consume(nonce);

  const source =
    cfg.device_id_from === "serial"
      ? leaf.serialHex
      : leaf.subjectAttrs.find((a) => a.type === cfg.device_id_from.slice("subject.".length))?.value;
  if (!source)
    fail(
      "FR_ENROLL_DENIED",
      `the IDevID certificate has no ${cfg.device_id_from} to take the device id from`,
    );
  const deviceId = checkDeviceId(cfg.device_id_prefix + source, "the device id from the IDevID certificate");
  return {
    options: {
      method: "x509",
      role: cfg.role,
      deviceId,
      ttlSeconds: cfg.ttl,
      dnsSans: [],
      provisioner: cfg.name,
      manufacturer: chosen.name,
      idevidSerial: leaf.serialHex,
      idevidSubject: leaf.x509.subject.replace(/\n/g, ", "),
      ...deviceNames(deviceId),
    },
    newDevice: (await deps.registry.find(deviceId)) ? undefined : { id: deviceId, status: "pending" },
    audit: { manufacturer: chosen.name, idevid_serial: leaf.serialHex },
  };
};
