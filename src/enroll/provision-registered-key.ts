import { fail } from "../errors/index.js";
import type { Authorize } from "./authorize-types.js";
import { NonceStore } from "./nonces.js";
import { checkPossession } from "./proof.js";
import { deviceNames } from "./sign-options.js";

/**
 * registered-key: the device's public key was registered with this provisioner beforehand. The CSR must
 * carry that key (so the CSR itself is signed by it), and a proof over a fresh server nonce with the
 * same key stops a captured CSR from being replayed.
 */
export const authorizeRegisteredKey: Authorize<"registered-key"> = async (deps, cfg, req) => {
  const nonce = NonceStore.decode(req.body.nonce);
  const reg = await deps.identities.registeredKey(req.csr.publicKey);
  if (!reg || reg.provisioner !== cfg.name) {
    fail("FR_ENROLL_DENIED", `the CSR is not signed by a key registered with provisioner "${cfg.name}"`);
  }
  checkPossession(req.csr.publicKey, req.body, nonce, req.csr.der, "the registered key");
  await deps.nonces.consume(nonce);
  return {
    options: {
      method: "registered-key",
      role: cfg.role,
      deviceId: reg.deviceId,
      ttlSeconds: cfg.ttl,
      dnsSans: [],
      provisioner: cfg.name,
      keyFingerprint: reg.fingerprint,
      ...deviceNames(reg.deviceId),
    },
    newDevice: (await deps.registry.find(reg.deviceId)) ? undefined : { id: reg.deviceId, status: "pending" },
    audit: { key_fingerprint: reg.fingerprint },
  };
};
