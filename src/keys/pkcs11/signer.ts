import crypto from "node:crypto";
import { checkScheme, defaultSchemeFor } from "../algorithms.js";
import { ecdsaRawToDer } from "../der.js";
import type { KeyAlgorithm, Signer } from "../types.js";
import { mapPkcs11Error } from "./errors.js";
import type { Handle } from "./lib.js";
import { signMechanism } from "./mechanisms.js";
import type { TokenSession } from "./module.js";

/** Largest signature any supported algorithm makes: RSA-3072 is 384 bytes. */
const maxSignatureBytes = 512;

/** A Signer whose private key stays in the token; only the digest or message crosses the boundary. */
export function pkcs11Signer(
  s: TokenSession,
  uri: string,
  privateKey: Handle,
  algorithm: KeyAlgorithm,
  publicKey: Uint8Array,
): Signer {
  return {
    uri,
    algorithm,
    publicKey,
    defaultScheme: defaultSchemeFor(algorithm),
    async sign(data, scheme) {
      const chosen = checkScheme(algorithm, scheme);
      const { mechanism, prehash } = signMechanism(chosen);
      s.requireMechanism(mechanism.mechanism, `${chosen} on ${uri}`);
      const input = prehash ? crypto.createHash(prehash).update(data).digest() : Buffer.from(data);
      return s.run(async () => {
        try {
          s.lib.C_SignInit(s.handle, mechanism, privateKey);
          const sig = await s.lib.C_SignAsync(s.handle, input, Buffer.alloc(maxSignatureBytes));
          // Only ECDSA is hashed here, and CKM_ECDSA returns r||s, which X.509 wants as DER.
          return prehash ? ecdsaRawToDer(sig) : new Uint8Array(sig);
        } catch (e) {
          throw mapPkcs11Error(e, `signing with ${uri}`);
        }
      });
    },
  };
}
