import crypto, { type KeyObject } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { fail, FleetError } from "../errors/index.js";
import { algorithmOf, checkScheme, defaultSchemeFor, nodeKeyGenParams, nodeSignArgs } from "./algorithms.js";
import type { BackendOptions, KeyBackend } from "./backend.js";
import type { KeyAlgorithm, KeyProtector, KeyWrapper, Signer } from "./types.js";
import type { FileKeyUri } from "./uri.js";
import { syncDirectory, tempSibling, writeNewSynced } from "../util/atomic-write.js";
import { mkdirp } from "../util/index.js";

/** Label of the armor around a barrier-encrypted PKCS#8 key; plain PEM readers reject it on purpose. */
export const encryptedKeyLabel = "FLEETROOT ENCRYPTED PRIVATE KEY";

/** Software keys in files: plain PKCS#8 PEM (offline use) or PKCS#8 encrypted by the server's barrier. */
export class FileBackend implements KeyBackend<FileKeyUri> {
  private readonly protector: KeyProtector | undefined;

  constructor(opts: BackendOptions) {
    this.protector = opts.protector;
  }

  async open(parsed: FileKeyUri, uri: string): Promise<Signer> {
    let text: string;
    try {
      text = await fs.readFile(parsed.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        fail("FR_KEY_NOT_FOUND", `no key file at ${parsed.path}; create one with generate`);
      }
      return fail("FR_KEY_BACKEND", `cannot read ${parsed.path}: ${(e as Error).message}`, { cause: e });
    }
    const key = await this.decode(parsed.path, text);
    return fileSigner(uri, key);
  }

  async generate(parsed: FileKeyUri, uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    if (await exists(parsed.path)) {
      fail("FR_KEY_EXISTS", `${parsed.path} already exists; refusing to overwrite a key`);
    }
    const [type, params] = nodeKeyGenParams(algorithm);
    const { privateKey } = await generateKeyPair(type, params);
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
    const content = this.protector
      ? armor(await this.protector.encrypt(aadFor(parsed.path), pkcs8))
      : privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    try {
      await writeNewFile(parsed.path, content);
    } catch (e) {
      if (e instanceof FleetError) throw e;
      fail("FR_KEY_BACKEND", `cannot write ${parsed.path}: ${(e as Error).message}`, { cause: e });
    }
    return fileSigner(uri, privateKey);
  }

  openWrapper(): Promise<KeyWrapper> {
    return fail("FR_KEY_URI", "file: keys cannot wrap the seal key; use a pkcs11: URI for an HSM-held key");
  }

  generateWrapper(): Promise<KeyWrapper> {
    return fail("FR_KEY_URI", "file: keys cannot wrap the seal key; use a pkcs11: URI for an HSM-held key");
  }

  async destroy(parsed: FileKeyUri, uri: string, publicKey: Uint8Array): Promise<boolean> {
    let key: Signer;
    try {
      key = await this.open(parsed, uri);
    } catch (e) {
      if (e instanceof FleetError && e.code === "FR_KEY_NOT_FOUND") return false;
      throw e;
    }
    if (!Buffer.from(key.publicKey).equals(Buffer.from(publicKey))) return false;
    try {
      await fs.unlink(parsed.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      return fail("FR_KEY_BACKEND", `cannot remove ${parsed.path}: ${(e as Error).message}`, { cause: e });
    }
    return true;
  }

  async close(): Promise<void> {}

  private async decode(file: string, text: string): Promise<KeyObject> {
    const body = unarmor(text);
    if (body !== null) {
      if (!this.protector) {
        fail(
          "FR_KEY_FORMAT",
          `${file} is encrypted by a Fleetroot server's barrier; open it through the unsealed server ` +
            `(this process has no barrier to decrypt it)`,
        );
      }
      let der: Uint8Array;
      try {
        der = await this.protector.decrypt(aadFor(file), body);
      } catch (e) {
        return fail(
          "FR_KEY_FORMAT",
          `${file} does not decrypt under the barrier (moved, altered or foreign)`,
          {
            cause: e,
          },
        );
      }
      return parsePrivateKey(file, { key: Buffer.from(der), format: "der", type: "pkcs8" });
    }
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
      fail("FR_KEY_FORMAT", `${file} is a passphrase-encrypted PKCS#8 key; decrypt it first (openssl pkey)`);
    }
    return parsePrivateKey(file, { key: text, format: "pem" });
  }
}

/** Associated data binding an encrypted key to where it is stored. */
function aadFor(absolutePath: string): string {
  return `keys/file:${absolutePath}`;
}

function fileSigner(uri: string, key: KeyObject): Signer {
  const algorithm = algorithmOf(key);
  const publicKey = new Uint8Array(crypto.createPublicKey(key).export({ type: "spki", format: "der" }));
  return {
    uri,
    algorithm,
    publicKey,
    defaultScheme: defaultSchemeFor(algorithm),
    async sign(data, scheme) {
      const args = nodeSignArgs(checkScheme(algorithm, scheme), key);
      return new Uint8Array(crypto.sign(args.algorithm, data, args.key));
    },
  };
}

function parsePrivateKey(file: string, input: crypto.PrivateKeyInput): KeyObject {
  try {
    return crypto.createPrivateKey(input);
  } catch (e) {
    return fail("FR_KEY_FORMAT", `${file} does not hold a PKCS#8 private key`, { cause: e });
  }
}

function generateKeyPair(
  type: ReturnType<typeof nodeKeyGenParams>[0],
  params: object,
): Promise<{ privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    // The overloads are per literal type; the params come from nodeKeyGenParams, which pairs them.
    (
      crypto.generateKeyPair as (
        t: string,
        o: object,
        cb: (e: Error | null, pub: KeyObject, priv: KeyObject) => void,
      ) => void
    )(type, params, (err, _pub, privateKey) => (err ? reject(err) : resolve({ privateKey })));
  });
}

function armor(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${encryptedKeyLabel}-----\n${lines.join("\n")}\n-----END ${encryptedKeyLabel}-----\n`;
}

function unarmor(text: string): Uint8Array | null {
  const m = new RegExp(
    `-----BEGIN ${encryptedKeyLabel}-----([\\s\\S]*?)-----END ${encryptedKeyLabel}-----`,
  ).exec(text);
  if (!m) return null;
  return new Uint8Array(Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64"));
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a new key file with mode 0600, atomically and without replacing anything: the content goes to a
 * temporary file that is fsynced and then hard-linked into place (link fails if the name exists, where
 * rename would silently overwrite a key another process just made).
 */
async function writeNewFile(target: string, content: string): Promise<void> {
  const dir = path.dirname(target);
  await mkdirp(dir, 0o700);
  const tmp = tempSibling(target);
  await writeNewSynced(tmp, content, 0o600);
  try {
    await fs.link(tmp, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      fail("FR_KEY_EXISTS", `${target} already exists; refusing to overwrite a key`);
    }
    throw e;
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await syncDirectory(dir); // make the new directory entry durable
}

/**
 * The directories that writing a key at `file` would create (generate makes missing ones), deepest first:
 * what undoing that generate removes again with the key.
 */
export async function missingParentDirs(file: string): Promise<string[]> {
  const absent = (d: string) =>
    fs.lstat(d).then(
      () => false,
      (e: NodeJS.ErrnoException) => e.code === "ENOENT",
    );
  const out: string[] = [];
  for (let d = path.dirname(file); d !== path.dirname(d) && (await absent(d)); d = path.dirname(d))
    out.push(d);
  return out;
}
