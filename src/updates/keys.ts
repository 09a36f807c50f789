import crypto, { type KeyObject } from "node:crypto";
import { fail } from "../errors/index.js";
import type { SignatureScheme, Signer } from "../keys/index.js";
import { canonicalJson } from "./canonical-json.js";

/** A public key as TUF and in-toto metadata carry it (securesystemslib's key format). */
export interface TufKey {
  keytype: string;
  scheme: string;
  keyval: { public: string };
  /** in-toto 1.x (securesystemslib) keys carry this, and it is part of what the keyid hashes. */
  keyid_hash_algorithms?: string[];
}

/** Signs canonical bytes with one key and says under which keyid. */
export interface TufSigner {
  readonly keyid: string;
  readonly key: TufKey;
  /** The signature as TUF writes it: lowercase hex. */
  sign(data: Uint8Array): Promise<string>;
}

const ed25519SpkiPrefix = Buffer.from("302a300506032b6570032100", "hex");

/** The securesystemslib form of an SPKI public key; `intoto` adds keyid_hash_algorithms (in-toto 1.x). */
export function tufKeyFromSpki(spki: Uint8Array, opts: { intoto?: boolean } = {}): TufKey {
  let key: KeyObject;
  try {
    key = crypto.createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch (e) {
    return fail("FR_UPDATES_KEY", "the public key is not a valid SubjectPublicKeyInfo", { cause: e });
  }
  const pem = () => key.export({ type: "spki", format: "pem" }).toString();
  const extra = opts.intoto ? { keyid_hash_algorithms: ["sha256", "sha512"] } : {};
  switch (key.asymmetricKeyType) {
    case "ed25519": {
      const raw = Buffer.from(spki).subarray(ed25519SpkiPrefix.length).toString("hex");
      return { keytype: "ed25519", scheme: "ed25519", ...extra, keyval: { public: raw } };
    }
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") {
        return { keytype: "ecdsa", scheme: "ecdsa-sha2-nistp256", ...extra, keyval: { public: pem() } };
      }
      if (curve === "secp384r1") {
        return { keytype: "ecdsa", scheme: "ecdsa-sha2-nistp384", ...extra, keyval: { public: pem() } };
      }
      return fail("FR_UPDATES_KEY", `EC curve ${curve ?? "?"} has no TUF scheme; use P-256 or P-384`);
    }
    case "rsa":
      return { keytype: "rsa", scheme: "rsassa-pss-sha256", ...extra, keyval: { public: pem() } };
    default:
      return fail("FR_UPDATES_KEY", `key type ${key.asymmetricKeyType ?? "?"} has no TUF scheme`);
  }
}

/** TUF spec: a keyid is the hex SHA-256 of the canonical JSON of the public key object. */
export function keyIdOf(key: TufKey): string {
  const { keytype, scheme, keyval, keyid_hash_algorithms } = key;
  const body = { keytype, scheme, keyval: { public: keyval.public }, keyid_hash_algorithms };
  return crypto.createHash("sha256").update(canonicalJson(body)).digest("hex");
}

/** The Fleetroot signature scheme that produces a signature of this TUF scheme. */
export function fleetSchemeOf(tufScheme: string): SignatureScheme {
  switch (tufScheme) {
    case "ed25519":
      return "ed25519";
    case "ecdsa-sha2-nistp256":
      return "ecdsa-sha256";
    case "ecdsa-sha2-nistp384":
      return "ecdsa-sha384";
    case "rsassa-pss-sha256":
      return "rsa-pss-sha256";
    default:
      return fail("FR_UPDATES_KEY", `signature scheme ${tufScheme} is not supported`);
  }
}

/** A Node public key from a TUF key; an unknown key type or a malformed value is FR_UPDATES_KEY. */
export function publicKeyOf(key: TufKey): KeyObject {
  const value = key?.keyval?.public;
  if (typeof value !== "string") return fail("FR_UPDATES_KEY", "the key has no keyval.public string");
  try {
    if (key.keytype === "ed25519" && /^[0-9a-f]{64}$/.test(value)) {
      return crypto.createPublicKey({
        key: Buffer.concat([ed25519SpkiPrefix, Buffer.from(value, "hex")]),
        format: "der",
        type: "spki",
      });
    }
    if (["ecdsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsa"].includes(key.keytype)) {
      return crypto.createPublicKey(value);
    }
  } catch (e) {
    return fail("FR_UPDATES_KEY", `the ${key.keytype} key value cannot be parsed`, { cause: e });
  }
  return fail("FR_UPDATES_KEY", `key type ${String(key.keytype)} is not supported`);
}

/** Verifies a hex signature made under a TUF key; any mismatch or malformed value is false. */
export function verifyTufSignature(key: TufKey, data: Uint8Array, sigHex: string): boolean {
  let pub: KeyObject;
  try {
    pub = publicKeyOf(key);
    fleetSchemeOf(key.scheme);
  } catch {
    return false;
  }
  if (!/^([0-9a-f]{2})+$/i.test(sigHex)) return false;
  const sig = Buffer.from(sigHex, "hex");
  try {
    if (key.scheme === "rsassa-pss-sha256") {
      return crypto.verify(
        "sha256",
        data,
        {
          key: pub,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO,
        },
        sig,
      );
    }
    const hash = key.scheme === "ed25519" ? null : key.scheme.endsWith("384") ? "sha384" : "sha256";
    return crypto.verify(hash, data, pub, sig);
  } catch {
    return false;
  }
}

/** Wraps any Signer (file, pkcs11, tpm) for TUF; the keyid is computed from its public key. */
export function tufSigner(signer: Signer, opts: { intoto?: boolean } = {}): TufSigner {
  const key = tufKeyFromSpki(signer.publicKey, opts);
  const scheme = fleetSchemeOf(key.scheme);
  return {
    keyid: keyIdOf(key),
    key,
    sign: async (data) => Buffer.from(await signer.sign(data, scheme)).toString("hex"),
  };
}

/** A TUF key from a PEM public key or a securesystemslib JSON key text (for offline keys). */
export function tufKeyFromText(text: string, opts: { intoto?: boolean } = {}): TufKey {
  const t = text.trim();
  if (t.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      return fail("FR_UPDATES_KEY", "the key file is neither PEM nor JSON");
    }
    const k = parsed as Partial<TufKey>;
    if (
      typeof k.keytype !== "string" ||
      typeof k.scheme !== "string" ||
      typeof k.keyval?.public !== "string"
    ) {
      return fail("FR_UPDATES_KEY", "a JSON key needs keytype, scheme and keyval.public");
    }
    const spki = publicKeyOf(k as TufKey).export({ type: "spki", format: "der" });
    return tufKeyFromSpki(spki, opts);
  }
  try {
    const spki = crypto.createPublicKey(t).export({ type: "spki", format: "der" });
    return tufKeyFromSpki(spki, opts);
  } catch (e) {
    if (e instanceof Error && "code" in e && (e as { code: unknown }).code === "FR_UPDATES_KEY") throw e;
    return fail("FR_UPDATES_KEY", "the key file is not a PEM public key", { cause: e });
  }
}
