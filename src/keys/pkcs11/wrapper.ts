import crypto from "node:crypto";
import { fail } from "../../errors/index.js";
import type { KeyWrapper } from "../types.js";
import { mapPkcs11Error, mapUnwrapError } from "./errors.js";
import type { Handle } from "./lib.js";
import { gcmMechanism, oaepMechanism, oaepOverhead } from "./mechanisms.js";
import type { TokenSession } from "./module.js";

const ivBytes = 12;
const tagBytes = 16;

/** AES-256-GCM in the token; the wrapped form is iv || ciphertext || tag. */
export function aesWrapper(s: TokenSession, uri: string, key: Handle): KeyWrapper {
  return {
    uri,
    async wrap(plaintext) {
      const iv = crypto.randomBytes(ivBytes);
      return s.run(async () => {
        try {
          s.lib.C_EncryptInit(s.handle, gcmMechanism(iv), key);
          const out = Buffer.alloc(plaintext.length + tagBytes + 16);
          const ct = await s.lib.C_EncryptAsync(s.handle, Buffer.from(plaintext), out);
          return new Uint8Array(Buffer.concat([iv, ct]));
        } catch (e) {
          throw mapPkcs11Error(e, `wrapping with ${uri}`);
        }
      });
    },
    async unwrap(wrapped) {
      if (wrapped.length < ivBytes + tagBytes) {
        fail("FR_KEY_FORMAT", `the wrapped value is ${wrapped.length} bytes, too short for AES-GCM`);
      }
      const buf = Buffer.from(wrapped);
      return s.run(async () => {
        try {
          s.lib.C_DecryptInit(s.handle, gcmMechanism(buf.subarray(0, ivBytes)), key);
          const body = buf.subarray(ivBytes);
          return new Uint8Array(await s.lib.C_DecryptAsync(s.handle, body, Buffer.alloc(body.length)));
        } catch (e) {
          throw mapUnwrapError(e, `unwrapping with ${uri}`);
        }
      });
    },
  };
}

/** RSA-OAEP: encrypt with the public key object, decrypt with the private key inside the token. */
export function rsaWrapper(
  s: TokenSession,
  uri: string,
  publicKey: Handle,
  privateKey: Handle,
  modulusBytes: number,
): KeyWrapper {
  return {
    uri,
    async wrap(plaintext) {
      if (plaintext.length > modulusBytes - oaepOverhead) {
        fail("FR_KEY_FORMAT", `RSA-OAEP with this key wraps at most ${modulusBytes - oaepOverhead} bytes`);
      }
      return s.run(async () => {
        try {
          s.lib.C_EncryptInit(s.handle, oaepMechanism, publicKey);
          return new Uint8Array(
            await s.lib.C_EncryptAsync(s.handle, Buffer.from(plaintext), Buffer.alloc(modulusBytes)),
          );
        } catch (e) {
          throw mapPkcs11Error(e, `wrapping with ${uri}`);
        }
      });
    },
    async unwrap(wrapped) {
      if (wrapped.length !== modulusBytes) {
        fail(
          "FR_KEY_FORMAT",
          `the wrapped value is ${wrapped.length} bytes; this RSA key makes ${modulusBytes}`,
        );
      }
      return s.run(async () => {
        try {
          s.lib.C_DecryptInit(s.handle, oaepMechanism, privateKey);
          return new Uint8Array(
            await s.lib.C_DecryptAsync(s.handle, Buffer.from(wrapped), Buffer.alloc(modulusBytes)),
          );
        } catch (e) {
          throw mapUnwrapError(e, `unwrapping with ${uri}`);
        }
      });
    },
  };
}
