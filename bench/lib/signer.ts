import { type KeyObject, sign } from "node:crypto";
import type { Signer } from "../../src/keys/types.js";

/** A software P-256 Signer over a node:crypto key pair, for benchmarks that need one without a store. */
export function keySigner(privateKey: KeyObject, publicKey: KeyObject): Signer {
  return {
    uri: "bench:p256",
    algorithm: "ecdsa-p256",
    publicKey: publicKey.export({ format: "der", type: "spki" }),
    defaultScheme: "ecdsa-sha256",
    sign: (data) => Promise.resolve(sign("sha256", data, privateKey)),
  };
}
