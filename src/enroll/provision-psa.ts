import { createHash, createPublicKey, verify } from "node:crypto";
import { fail } from "../errors/index.js";
import type { Authorize } from "./authorize-types.js";
import { NonceStore } from "./nonces.js";
import type { ProvisionerConfig } from "./provisioner-config.js";
import {
  COSE_EDDSA,
  COSE_ES384,
  type CoseSign1,
  type PsaClaims,
  isSecuredLifecycle,
  parseCoseSign1,
  parsePsaClaims,
  sigStructure,
} from "./psa-token.js";

const MAX_TOKEN_BYTES = 8192;

/**
 * The token nonce a device must put in its PSA token: SHA-256(server nonce ‖ CSR SubjectPublicKeyInfo).
 * It proves freshness (the server nonce is single-use) and binds the token to the key being certified.
 */
export function psaBinding(serverNonce: Uint8Array, spki: Uint8Array): Buffer {
  return createHash("sha256").update(serverNonce).update(spki).digest();
}

export function verifyCose(cose: CoseSign1, spki: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  const data = sigStructure(cose.protectedBytes, cose.payload);
  const hash = cose.alg === COSE_EDDSA ? null : cose.alg === COSE_ES384 ? "sha384" : "sha256";
  if (cose.alg !== COSE_EDDSA && key.asymmetricKeyType !== "ec") return false;
  if (cose.alg === COSE_EDDSA && key.asymmetricKeyType !== "ed25519") return false;
  try {
    return verify(hash, data, hash ? { key, dsaEncoding: "ieee-p1363" } : key, cose.signature);
  } catch {
    return false;
  }
}

function readToken(input: unknown): Buffer {
  if (typeof input !== "string" || input.length === 0) {
    fail("FR_ENROLL_MALFORMED", "attestation_token is required: the PSA token as base64");
  }
  if (input.length > (MAX_TOKEN_BYTES * 4) / 3 + 4 || !/^[A-Za-z0-9+/_=-]+$/.test(input)) {
    fail("FR_ENROLL_MALFORMED", `attestation_token must be base64 of at most ${MAX_TOKEN_BYTES} bytes`);
  }
  return Buffer.from(input, input.includes("-") || input.includes("_") ? "base64url" : "base64");
}

/** Appraisal against the provisioner's policy (after the signature checked out). */
function appraise(cfg: Extract<ProvisionerConfig, { type: "psa" }>, claims: PsaClaims): void {
  const deny = (why: string): never => fail("FR_ENROLL_ATTESTATION", why);
  if (!cfg.profiles.includes(claims.profile))
    deny(`profile ${claims.profile} is not accepted by provisioner "${cfg.name}"`);
  if (!isSecuredLifecycle(claims.lifecycle)) {
    deny(`security lifecycle 0x${claims.lifecycle.toString(16).padStart(4, "0")} is not "secured" (0x30xx)`);
  }
  const impl = claims.implementationId.toString("hex");
  if (cfg.implementation_ids.length && !cfg.implementation_ids.includes(impl))
    deny(`implementation id ${impl} is not accepted`);
  claims.components.forEach((c, i) => {
    const value = c.measurementValue.toString("hex");
    const signer = c.signerId?.toString("hex");
    const ok = cfg.reference_values.some(
      (r) =>
        r.measurement_value === value &&
        (r.signer_id === undefined || r.signer_id === signer) &&
        (r.measurement_type === undefined || r.measurement_type === c.measurementType),
    );
    if (!ok)
      deny(
        `software component ${i} (${c.measurementType ?? "unnamed"}) measurement ${value.slice(0, 16)}… matches no reference value`,
      );
  });
}

/**
 * psa: the device sends a PSA initial attestation token signed by its attestation key (registered by
 * instance id). The token's nonce must be psaBinding(server nonce, CSR key); the lifecycle must be
 * secured; every software component must match a reference value.
 */
export const authorizePsa: Authorize<"psa"> = async (deps, cfg, req) => {
  const nonce = NonceStore.decode(req.body.nonce);
  const cose = parseCoseSign1(readToken(req.body.attestation_token));
  const claims = parsePsaClaims(cose.payload);
  const instanceId = claims.instanceId.toString("hex");
  const key = await deps.identities.psaKey(instanceId);
  if (!key || key.provisioner !== cfg.name) {
    fail(
      "FR_ENROLL_ATTESTATION",
      `instance id ${instanceId} is not registered with provisioner "${cfg.name}"`,
    );
  }
  if (!verifyCose(cose, key.spki))
    fail(
      "FR_ENROLL_ATTESTATION",
      "the token's signature does not verify under the registered attestation key",
    );
  if (!claims.nonce.equals(psaBinding(nonce, req.csr.publicKey))) {
    fail(
      "FR_ENROLL_ATTESTATION",
      "the token's nonce is not SHA-256(server nonce ‖ CSR public key): stale, foreign or for another key",
    );
  }
  appraise(cfg, claims);
  await deps.nonces.consume(nonce);
  return {
    options: {
      method: "psa",
      role: cfg.role,
      deviceId: key.deviceId,
      ttlSeconds: cfg.ttl,
      dnsSans: [],
      provisioner: cfg.name,
      instanceId,
      implementationId: claims.implementationId.toString("hex"),
      commonName: key.deviceId,
      uriSans: [`urn:fleetroot:device:${key.deviceId}`],
    },
    newDevice: (await deps.registry.find(key.deviceId)) ? undefined : { id: key.deviceId, status: "pending" },
    audit: { instance_id: instanceId, profile: claims.profile, lifecycle: String(claims.lifecycle) },
  };
};
