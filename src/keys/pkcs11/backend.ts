import crypto from "node:crypto";
import fs from "node:fs/promises";
import { fail } from "../../errors/index.js";
import { defaultSchemeFor } from "../algorithms.js";
import type { BackendOptions, KeyBackend } from "../backend.js";
import type { KeyAlgorithm, KeyWrapper, Signer, WrapAlgorithm } from "../types.js";
import type { Pkcs11KeyUri } from "../uri.js";
import { mapPkcs11Error } from "./errors.js";
import { type Handle, pkcs11js } from "./lib.js";
import { keyPairSpec, signMechanism } from "./mechanisms.js";
import { acquireModule, type Pkcs11Module, releaseModule, type TokenSession } from "./module.js";
import {
  attr,
  describeName,
  findObjects,
  findOne,
  type KeyName,
  publicKeyFor,
  readPublicKey,
  ulongAttr,
} from "./objects.js";
import { pkcs11Signer } from "./signer.js";
import { aesWrapper, rsaWrapper } from "./wrapper.js";

export const softHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

type Template = { type: number; value?: number | boolean | string | Buffer }[];

/** Keys inside a PKCS#11 token (RFC 7512 URIs), through pkcs11js. */
export class Pkcs11Backend implements KeyBackend<Pkcs11KeyUri> {
  private readonly modules = new Map<string, Pkcs11Module>();

  constructor(private readonly opts: BackendOptions) {}

  async open(parsed: Pkcs11KeyUri, uri: string): Promise<Signer> {
    const s = await this.session(parsed);
    const name = keyName(parsed, "open");
    requireType(parsed, ["private"], "a signing key");
    return s.run(() => {
      try {
        const priv = findOne(s, pkcs11js.CKO_PRIVATE_KEY, name, "private key");
        const { algorithm, spki } = readPublicKey(s, publicKeyFor(s, priv));
        return pkcs11Signer(s, uri, priv, algorithm, spki);
      } catch (e) {
        throw mapPkcs11Error(e, `opening ${uri}`);
      }
    });
  }

  async generate(parsed: Pkcs11KeyUri, uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    const s = await this.session(parsed);
    requireType(parsed, ["private"], "a signing key");
    const spec = keyPairSpec(algorithm);
    s.requireMechanism(spec.mechanism, `generating ${algorithm}`);
    s.requireMechanism(
      signMechanism(defaultSchemeFor(algorithm)).mechanism.mechanism,
      `signing with ${algorithm}`,
    );
    return s.run(async () => {
      try {
        const name = newKeyName(s, parsed);
        const pair = await s.lib.C_GenerateKeyPairAsync(
          s.handle,
          { mechanism: spec.mechanism },
          [...common(name), ...spec.publicAttrs, { type: pkcs11js.CKA_VERIFY, value: true }],
          [...common(name), ...privateAttrs(), { type: pkcs11js.CKA_SIGN, value: true }],
        );
        const { spki } = readPublicKey(s, pair.publicKey);
        return pkcs11Signer(s, uri, pair.privateKey, algorithm, spki);
      } catch (e) {
        throw mapPkcs11Error(e, `generating ${algorithm} at ${uri}`);
      }
    });
  }

  async openWrapper(parsed: Pkcs11KeyUri, uri: string): Promise<KeyWrapper> {
    const s = await this.session(parsed);
    const name = keyName(parsed, "open");
    requireType(parsed, ["secret-key", "private"], "a wrapping key");
    return s.run(() => {
      try {
        const secrets = parsed.type === "private" ? [] : findObjects(s, pkcs11js.CKO_SECRET_KEY, name);
        if (secrets.length > 1)
          fail("FR_KEY_URI", `several secret keys match ${describeName(name)}; add id=`);
        if (secrets[0]) return secretWrapper(s, uri, secrets[0]);
        if (parsed.type === "secret-key") findOne(s, pkcs11js.CKO_SECRET_KEY, name, "secret key");
        const priv = findOne(s, pkcs11js.CKO_PRIVATE_KEY, name, "AES or RSA wrapping key");
        return rsaPairWrapper(s, uri, priv, publicKeyFor(s, priv));
      } catch (e) {
        throw mapPkcs11Error(e, `opening wrapping key ${uri}`);
      }
    });
  }

  async generateWrapper(parsed: Pkcs11KeyUri, uri: string, algorithm: WrapAlgorithm): Promise<KeyWrapper> {
    const s = await this.session(parsed);
    if (algorithm === "aes-256") {
      requireType(parsed, ["secret-key"], "an AES wrapping key");
      s.requireMechanism(pkcs11js.CKM_AES_KEY_GEN, "generating aes-256");
      s.requireMechanism(pkcs11js.CKM_AES_GCM, "wrapping with aes-256");
      return s.run(async () => {
        try {
          const name = newKeyName(s, parsed);
          const key = await s.lib.C_GenerateKeyAsync(s.handle, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
            ...common(name),
            ...privateAttrs(),
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
            { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
            { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
            { type: pkcs11js.CKA_ENCRYPT, value: true },
            { type: pkcs11js.CKA_DECRYPT, value: true },
          ]);
          return aesWrapper(s, uri, key);
        } catch (e) {
          throw mapPkcs11Error(e, `generating aes-256 at ${uri}`);
        }
      });
    }
    requireType(parsed, ["private"], "an RSA wrapping key");
    const spec = keyPairSpec(algorithm);
    s.requireMechanism(spec.mechanism, `generating ${algorithm}`);
    s.requireMechanism(pkcs11js.CKM_RSA_PKCS_OAEP, `wrapping with ${algorithm}`);
    return s.run(async () => {
      try {
        const name = newKeyName(s, parsed);
        const pair = await s.lib.C_GenerateKeyPairAsync(
          s.handle,
          { mechanism: spec.mechanism },
          [...common(name), ...spec.publicAttrs, { type: pkcs11js.CKA_ENCRYPT, value: true }],
          [...common(name), ...privateAttrs(), { type: pkcs11js.CKA_DECRYPT, value: true }],
        );
        return rsaPairWrapper(s, uri, pair.privateKey, pair.publicKey);
      } catch (e) {
        throw mapPkcs11Error(e, `generating ${algorithm} at ${uri}`);
      }
    });
  }

  async close(): Promise<void> {
    for (const m of this.modules.values()) releaseModule(m);
    this.modules.clear();
  }

  async destroy(parsed: Pkcs11KeyUri, uri: string, publicKey: Uint8Array): Promise<boolean> {
    const s = await this.session(parsed);
    const name = keyName(parsed, "remove");
    requireType(parsed, ["private"], "a signing key");
    const wanted = Buffer.from(publicKey);
    return s.run(() => {
      try {
        for (const priv of findObjects(s, pkcs11js.CKO_PRIVATE_KEY, name)) {
          const pub = publicKeyFor(s, priv);
          if (!Buffer.from(readPublicKey(s, pub).spki).equals(wanted)) continue;
          s.lib.C_DestroyObject(s.handle, priv);
          s.lib.C_DestroyObject(s.handle, pub);
          return true;
        }
        return false;
      } catch (e) {
        throw mapPkcs11Error(e, `removing ${uri}`);
      }
    });
  }

  private async session(parsed: Pkcs11KeyUri): Promise<TokenSession> {
    const modulePath =
      parsed.modulePath ??
      this.opts.defaultPkcs11Module ??
      process.env.FLEETROOT_PKCS11_MODULE ??
      softHsmModule;
    const pin = await readPin(parsed);
    let m = this.modules.get(modulePath);
    if (!m) {
      m = acquireModule(modulePath);
      this.modules.set(modulePath, m);
    }
    return m.session(parsed, pin);
  }
}

async function readPin(parsed: Pkcs11KeyUri): Promise<string> {
  if (parsed.pinValue !== undefined) return parsed.pinValue;
  if (parsed.pinSource === undefined) {
    return fail("FR_KEY_PIN", "the pkcs11 URI gives no PIN; add pin-source=FILE (or pin-value=…)");
  }
  try {
    // A PIN file usually ends with a newline that is not part of the PIN.
    return (await fs.readFile(parsed.pinSource, "utf8")).replace(/\r?\n$/, "");
  } catch (e) {
    return fail(
      "FR_KEY_PIN",
      `cannot read the PIN file ${parsed.pinSource}: ${(e as NodeJS.ErrnoException).code}`,
      {
        cause: e,
      },
    );
  }
}

function keyName(parsed: Pkcs11KeyUri, what: string): KeyName {
  if (parsed.object === undefined && parsed.id === undefined) {
    fail("FR_KEY_URI", `the pkcs11 URI must name a key to ${what}: add object=LABEL or id=…`);
  }
  return { object: parsed.object, id: parsed.id };
}

function requireType(parsed: Pkcs11KeyUri, allowed: string[], what: string): void {
  if (parsed.type !== undefined && !allowed.includes(parsed.type)) {
    fail(
      "FR_KEY_URI",
      `the pkcs11 URI says type=${parsed.type}, but ${what} is type=${allowed.join(" or ")}`,
    );
  }
}

/** Label and id for a new key; refuses when a key with that label (or id) is already on the token. */
function newKeyName(s: TokenSession, parsed: Pkcs11KeyUri): { label: string; id: Buffer } {
  if (parsed.object === undefined) fail("FR_KEY_URI", "to generate a pkcs11 key the URI needs object=LABEL");
  const taken =
    findObjects(s, null, { object: parsed.object, id: undefined }).length > 0 ||
    (parsed.id !== undefined && findObjects(s, null, { object: undefined, id: parsed.id }).length > 0);
  if (taken) {
    fail(
      "FR_KEY_EXISTS",
      `token "${s.label}" already holds a key with ${describeName({ object: parsed.object, id: parsed.id })}`,
    );
  }
  return { label: parsed.object, id: parsed.id ? Buffer.from(parsed.id) : crypto.randomBytes(16) };
}

function common(name: { label: string; id: Buffer }): Template {
  return [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: name.label },
    { type: pkcs11js.CKA_ID, value: name.id },
  ];
}

/** Private and secret keys: usable only after login, never readable, never exportable. */
function privateAttrs(): Template {
  return [
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
  ];
}

function secretWrapper(s: TokenSession, uri: string, key: Handle): KeyWrapper {
  const type = ulongAttr(s, key, pkcs11js.CKA_KEY_TYPE);
  const len = ulongAttr(s, key, pkcs11js.CKA_VALUE_LEN);
  if (type !== pkcs11js.CKK_AES || len !== 32) {
    fail("FR_KEY_ALGORITHM", `the secret key at ${uri} is not AES-256; only AES-256 keys wrap the seal key`);
  }
  return aesWrapper(s, uri, key);
}

function rsaPairWrapper(s: TokenSession, uri: string, priv: Handle, pub: Handle): KeyWrapper {
  if (ulongAttr(s, priv, pkcs11js.CKA_KEY_TYPE) !== pkcs11js.CKK_RSA) {
    fail("FR_KEY_ALGORITHM", `the key at ${uri} is neither AES-256 nor RSA; it cannot wrap the seal key`);
  }
  const modulus = attr(s, pub, pkcs11js.CKA_MODULUS);
  return rsaWrapper(s, uri, pub, priv, modulus.length - (modulus[0] === 0 ? 1 : 0));
}
