import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { softHsmToken, type SoftHsmToken } from "../../test/helpers/softhsm.js";
import { FleetError } from "../errors/index.js";
import {
  createKeyManager,
  keyAlgorithms,
  type KeyManager,
  type KeyProtector,
  publicKeyPem,
  schemesFor,
  type SignatureScheme,
  type Signer,
  verifySignature,
} from "./index.js";

const run = promisify(execFile);

/** A small stand-in for the server's barrier: AES-256-GCM with the aad bound in. */
function testProtector(): KeyProtector {
  const key = crypto.randomBytes(32);
  return {
    async encrypt(aad, plaintext) {
      const iv = crypto.randomBytes(12);
      const c = crypto.createCipheriv("aes-256-gcm", key, iv).setAAD(Buffer.from(aad));
      return Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]);
    },
    async decrypt(aad, ct) {
      const d = crypto.createDecipheriv("aes-256-gcm", key, ct.subarray(0, 12)).setAAD(Buffer.from(aad));
      d.setAuthTag(ct.subarray(ct.length - 16));
      return Buffer.concat([d.update(ct.subarray(12, ct.length - 16)), d.final()]);
    },
  };
}

/** Asserts that `p` rejects with a FleetError of `code` and returns it for further checks. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<FleetError> {
  const e: unknown = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FleetError);
  expect((e as FleetError).code).toBe(code);
  return e as FleetError;
}

/** Has openssl verify `sig` over `data` with the signer's public key. */
async function opensslVerifies(
  dir: string,
  signer: Signer,
  scheme: SignatureScheme,
  data: Buffer,
  sig: Uint8Array,
) {
  const pub = path.join(dir, "pub.pem");
  const dataFile = path.join(dir, "data");
  const sigFile = path.join(dir, "sig");
  await fs.writeFile(pub, publicKeyPem(signer));
  await fs.writeFile(dataFile, data);
  await fs.writeFile(sigFile, sig);
  let args: string[];
  if (scheme === "ed25519") {
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", dataFile, "-sigfile", sigFile];
  } else {
    const digest = scheme.endsWith("sha384") ? "-sha384" : "-sha256";
    const pss = scheme.startsWith("rsa-pss")
      ? [
          "-sigopt",
          "rsa_padding_mode:pss",
          "-sigopt",
          "rsa_pss_saltlen:digest",
          "-sigopt",
          `rsa_mgf1_md:${digest.slice(1)}`,
        ]
      : [];
    args = ["dgst", digest, ...pss, "-verify", pub, "-signature", sigFile, dataFile];
  }
  const { stdout } = await run("openssl", args, { timeout: 20_000 });
  return /Verified OK|Signature Verified Successfully/.test(stdout);
}

let tmp: string;
let token: SoftHsmToken;
let pinToken: SoftHsmToken;
let wrapToken: SoftHsmToken;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "fleetroot-keys-"));
  // SoftHSM2 sees only tokens that exist at C_Initialize: make them all first.
  token = await softHsmToken("conformance");
  pinToken = await softHsmToken("pin-test");
  wrapToken = await softHsmToken("wrap-test");
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

interface BackendCase {
  name: string;
  protector?: () => KeyProtector;
  uri: (name: string) => string;
}

const backends: BackendCase[] = [
  { name: "file (plain PKCS#8)", uri: (n) => `file:${path.join(tmp, "plain", `${n}.pem`)}` },
  {
    name: "file (under a protector)",
    protector: testProtector,
    uri: (n) => `file:${path.join(tmp, "sealed", `${n}.pem`)}`,
  },
  { name: "pkcs11 (SoftHSM2)", uri: (n) => token.uri(n) },
];

describe.each(backends)("key backend conformance: $name", (b) => {
  let km: KeyManager;
  let work: string;

  beforeAll(async () => {
    km = createKeyManager(b.protector ? { protector: b.protector() } : {});
    work = await fs.mkdtemp(path.join(tmp, "ossl-"));
  });
  afterAll(async () => {
    await km.close();
  });

  it.each(keyAlgorithms)(
    "%s: generates, reopens by URI, signs every scheme; node and openssl verify",
    async (alg) => {
      const uri = b.uri(`key-${alg}`);
      const made = await km.generate(uri, alg);
      expect(made.algorithm).toBe(alg);
      expect(made.defaultScheme).toBe(schemesFor(alg)[0]);

      const opened = await km.open(uri);
      expect(opened.algorithm).toBe(alg);
      expect(Buffer.from(opened.publicKey).equals(Buffer.from(made.publicKey))).toBe(true);
      expect(opened.uri).not.toContain("pin-value");

      const data = crypto.randomBytes(300);
      for (const scheme of schemesFor(alg)) {
        const sig = await opened.sign(data, scheme);
        expect(verifySignature(opened.publicKey, scheme, data, sig), scheme).toBe(true);
        expect(verifySignature(opened.publicKey, scheme, Buffer.concat([data, Buffer.from([0])]), sig)).toBe(
          false,
        );
        expect(await opensslVerifies(work, opened, scheme, data, sig), `openssl ${scheme}`).toBe(true);
      }
      // The default scheme is used when none is given.
      const sig = await made.sign(data);
      expect(verifySignature(made.publicKey, made.defaultScheme, data, sig)).toBe(true);
    },
  );

  it("signs concurrently without mixing up operations", async () => {
    const signer = await km.open(b.uri("key-ecdsa-p256"));
    const msgs = Array.from({ length: 20 }, (_, i) => Buffer.from(`message ${i}`));
    const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
    sigs.forEach((s, i) => expect(verifySignature(signer.publicKey, "ecdsa-sha256", msgs[i]!, s)).toBe(true));
  });

  it("refuses a scheme that does not fit the key", async () => {
    const signer = await km.open(b.uri("key-ed25519"));
    await rejectsWith(signer.sign(Buffer.from("x"), "rsa-pss-sha256"), "FR_KEY_ALGORITHM");
  });

  it("refuses to generate over an existing key (FR_KEY_EXISTS)", async () => {
    const before = (await km.open(b.uri("key-ecdsa-p384"))).publicKey;
    await rejectsWith(km.generate(b.uri("key-ecdsa-p384"), "ecdsa-p256"), "FR_KEY_EXISTS");
    const after = await km.open(b.uri("key-ecdsa-p384"));
    expect(after.algorithm).toBe("ecdsa-p384");
    expect(Buffer.from(after.publicKey).equals(Buffer.from(before))).toBe(true);
  });

  it("reports a missing key as FR_KEY_NOT_FOUND", async () => {
    const e = await rejectsWith(km.open(b.uri("no-such-key")), "FR_KEY_NOT_FOUND");
    expect(e.message).toContain("no-such-key");
  });

  it("refuses an unknown algorithm (FR_KEY_ALGORITHM)", async () => {
    await rejectsWith(km.generate(b.uri("bad-alg"), "dsa-1024" as never), "FR_KEY_ALGORITHM");
  });

  it("destroys a generated key only when given its public key; the URI can then be generated again", async () => {
    const uri = b.uri("to-destroy");
    const made = await km.generate(uri, "ecdsa-p256");
    const other = await km.open(b.uri("key-ecdsa-p256"));
    // Another key's public key: nothing is removed and the key still signs.
    expect(await km.destroy(uri, other.publicKey)).toBe(false);
    const still = await km.open(uri);
    expect(Buffer.from(still.publicKey).equals(Buffer.from(made.publicKey))).toBe(true);
    expect(await km.destroy(uri, made.publicKey)).toBe(true);
    await rejectsWith(km.open(uri), "FR_KEY_NOT_FOUND");
    expect(await km.destroy(uri, made.publicKey)).toBe(false); // nothing there any more
    // The name is free again: a new key with a new public key, which the old public key does not remove.
    const again = await km.generate(uri, "ed25519");
    expect(await km.destroy(uri, made.publicKey)).toBe(false);
    expect((await km.open(uri)).algorithm).toBe("ed25519");
    expect(await km.destroy(uri, again.publicKey)).toBe(true);
    // The other keys are untouched.
    expect((await km.open(b.uri("key-ecdsa-p256"))).algorithm).toBe("ecdsa-p256");
  });
});

describe("provisional keys (generateProvisional / settled)", () => {
  /** Whether `p` has settled after the pending callbacks have run. */
  const isDone = async (p: Promise<unknown>) => {
    let done = false;
    void p.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    return done;
  };

  it("settled() waits from the call on, until keep() or discard(); discard removes the key", async () => {
    const km = createKeyManager();
    const uri = `file:${path.join(tmp, "provisional", "a.pem")}`;
    const making = km.generateProvisional(uri, "ed25519");
    // Asked before the key even exists: it waits all the same.
    const early = km.settled(uri);
    const spelled = km.settled(`file://${path.join(tmp, "provisional", "a.pem")}`); // the same key
    const key = await making;
    expect(await isDone(early)).toBe(false);
    expect(await isDone(spelled)).toBe(false);
    expect(await isDone(km.settled(`file:${path.join(tmp, "provisional", "b.pem")}`))).toBe(true);
    // A second generate of the same URI fails and leaves no wait of its own behind.
    await rejectsWith(km.generateProvisional(uri, "ed25519"), "FR_KEY_EXISTS");
    await key.discard();
    expect(await isDone(early)).toBe(true);
    await rejectsWith(km.open(uri), "FR_KEY_NOT_FOUND");

    const kept = await km.generateProvisional(uri, "ecdsa-p256");
    const waiting = km.settled(uri);
    kept.keep();
    await waiting;
    await kept.discard(); // after keep: nothing happens
    expect((await km.open(uri)).algorithm).toBe("ecdsa-p256");

    // Directories a file key's generate made go with the key; one that was there stays.
    const base = path.join(tmp, "provisional-dirs");
    await fs.mkdir(base);
    const deep = await km.generateProvisional(`file:${path.join(base, "a", "b", "k.pem")}`, "ed25519");
    await fs.writeFile(path.join(base, "other"), "x");
    await deep.discard();
    expect(await fs.readdir(base)).toEqual(["other"]);
    await km.close();
  });
});

describe("file: backend storage", () => {
  it("writes plain keys as PKCS#8 PEM with mode 0600 that openssl reads", async () => {
    const km = createKeyManager();
    const file = path.join(tmp, "store", "plain.pem");
    await km.generate(`file:${file}`, "ecdsa-p256");
    const st = await fs.stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    const text = await fs.readFile(file, "utf8");
    expect(text).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const { stdout } = await run("openssl", ["pkey", "-in", file, "-noout", "-text"]);
    expect(stdout).toContain("P-256");
    // Nothing but the key: no temporary file left beside it.
    expect(await fs.readdir(path.dirname(file))).toEqual(["plain.pem"]);
  });

  it("resolves a relative file: URI against the working directory", async () => {
    const rel = path.relative(process.cwd(), path.join(tmp, "store", "rel.pem"));
    const km = createKeyManager();
    await km.generate(`file:${rel}`, "ed25519");
    expect((await km.open(`file:${path.join(tmp, "store", "rel.pem")}`)).algorithm).toBe("ed25519");
  });

  it("encrypts keys under a protector, binds them to their path, and needs the barrier to open", async () => {
    const protector = testProtector();
    const km = createKeyManager({ protector });
    const file = path.join(tmp, "store", "sealed.pem");
    const signer = await km.generate(`file:${file}`, "ed25519");
    const text = await fs.readFile(file, "utf8");
    expect(text).toMatch(/^-----BEGIN FLEETROOT ENCRYPTED PRIVATE KEY-----/);
    expect(text).not.toContain("PRIVATE KEY-----\nMC4C"); // no plain PKCS#8 Ed25519 body
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);

    const e = await rejectsWith(createKeyManager().open(`file:${file}`), "FR_KEY_FORMAT");
    expect(e.message).toMatch(/barrier/);

    // Associated data binds the key to its path: a moved file does not decrypt.
    const moved = path.join(tmp, "store", "moved.pem");
    await fs.copyFile(file, moved);
    await rejectsWith(km.open(`file:${moved}`), "FR_KEY_FORMAT");
    expect(Buffer.from((await km.open(`file:${file}`)).publicKey).equals(Buffer.from(signer.publicKey))).toBe(
      true,
    );
  });

  it("reports garbage in a key file as FR_KEY_FORMAT", async () => {
    const file = path.join(tmp, "store", "garbage.pem");
    await fs.writeFile(file, "not a key\n");
    await rejectsWith(createKeyManager().open(`file:${file}`), "FR_KEY_FORMAT");
  });

  it("cannot make a wrapper (file: keys do not wrap the seal key)", async () => {
    await rejectsWith(createKeyManager().generateWrapper(`file:${tmp}/w.pem`, "aes-256"), "FR_KEY_URI");
  });
});

describe("key URI and PKCS#11 errors", () => {
  let km: KeyManager;
  beforeAll(() => {
    km = createKeyManager();
  });
  afterAll(async () => {
    await km.close();
  });

  it("rejects an unknown URI scheme, naming it", async () => {
    const e = await rejectsWith(km.open("tpm:handle=0x81000001"), "FR_KEY_URI");
    expect(e.message).toContain('"tpm:"');
  });

  it("rejects a malformed pkcs11 URI, naming what is wrong", async () => {
    expect((await rejectsWith(km.open("pkcs11:token=a;bogus"), "FR_KEY_URI")).message).toContain("bogus");
    expect((await rejectsWith(km.open("pkcs11:token=a;id=%zz"), "FR_KEY_URI")).message).toContain("id");
    expect((await rejectsWith(km.open("pkcs11:token=a;token=b"), "FR_KEY_URI")).message).toContain("twice");
    expect((await rejectsWith(km.open("pkcs11:token=a;colour=red"), "FR_KEY_URI")).message).toContain(
      "colour",
    );
  });

  it("maps a wrong PIN to FR_KEY_PIN without echoing the PIN", async () => {
    const wrong = "wrong-pin-8472";
    const uri = pinToken.uri("k").replace(`pin-value=${pinToken.pin}`, `pin-value=${wrong}`);
    const e = await rejectsWith(km.open(uri), "FR_KEY_PIN");
    expect(e.message).not.toContain(wrong);
    expect(JSON.stringify({ m: e.message, d: e.detail })).not.toContain(wrong);
  });

  it("reads the PIN from pin-source (a path or a file: URI)", async () => {
    const pinFile = path.join(tmp, "pin.txt");
    await fs.writeFile(pinFile, `${pinToken.pin}\n`, { mode: 0o600 });
    const base = `pkcs11:token=pin-test;object=src-key?module-path=${encodeURIComponent(pinToken.module)}`;
    const other = createKeyManager();
    try {
      const made = await other.generate(`${base}&pin-source=${encodeURIComponent(pinFile)}`, "ecdsa-p256");
      const opened = await other.open(`${base}&pin-source=${encodeURIComponent(`file:${pinFile}`)}`);
      expect(Buffer.from(opened.publicKey).equals(Buffer.from(made.publicKey))).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("names the label of a missing token (FR_KEY_TOKEN)", async () => {
    const uri = token.uri("k").replace("token=conformance", "token=no-such-token");
    const e = await rejectsWith(km.open(uri), "FR_KEY_TOKEN");
    expect(e.message).toContain('"no-such-token"');
  });

  it("names the path of a missing module (FR_KEY_TOKEN)", async () => {
    const e = await rejectsWith(
      km.open("pkcs11:token=x;object=y?module-path=/nonexistent/libpkcs11.so&pin-value=1234"),
      "FR_KEY_TOKEN",
    );
    expect(e.message).toContain("/nonexistent/libpkcs11.so");
  });

  it("refuses a signing URI that names no object", async () => {
    const uri = token.uri("x").replace(";object=x", "");
    await rejectsWith(km.open(uri), "FR_KEY_URI");
  });

  it("refuses a token already logged in with a different PIN", async () => {
    await km.generate(token.uri("login-check"), "ecdsa-p256");
    const uri = token.uri("login-check").replace(`pin-value=${token.pin}`, "pin-value=other");
    await rejectsWith(km.open(uri), "FR_KEY_PIN");
  });
});

describe("pkcs11 wrappers (SoftHSM2)", () => {
  let km: KeyManager;
  beforeAll(() => {
    km = createKeyManager();
  });
  afterAll(async () => {
    await km.close();
  });

  it("AES-256-GCM: wraps and unwraps, reopens by URI, and rejects a tampered blob", async () => {
    const w = await km.generateWrapper(wrapToken.uri("seal-aes"), "aes-256");
    const secret = crypto.randomBytes(32);
    const wrapped = await w.wrap(secret);
    expect(wrapped.length).toBe(12 + 32 + 16);
    expect(Buffer.from(await w.unwrap(wrapped)).equals(secret)).toBe(true);
    // Random IV: wrapping twice gives different blobs.
    expect(Buffer.from(await w.wrap(secret)).equals(Buffer.from(wrapped))).toBe(false);

    const again = await km.openWrapper(wrapToken.uri("seal-aes"));
    expect(Buffer.from(await again.unwrap(wrapped)).equals(secret)).toBe(true);

    const tampered = Buffer.from(wrapped);
    tampered[20] = (tampered[20] ?? 0) ^ 1;
    await rejectsWith(again.unwrap(tampered), "FR_KEY_FORMAT");
    await rejectsWith(again.unwrap(wrapped.subarray(0, 20)), "FR_KEY_FORMAT");
    // The session still works after a failed decryption.
    expect(Buffer.from(await again.unwrap(wrapped)).equals(secret)).toBe(true);
  });

  it("RSA-OAEP: wraps and unwraps, reopens by URI, and rejects a tampered blob", async () => {
    const w = await km.generateWrapper(wrapToken.uri("seal-rsa"), "rsa-2048");
    const secret = crypto.randomBytes(32);
    const wrapped = await w.wrap(secret);
    expect(wrapped.length).toBe(256);
    const again = await km.openWrapper(wrapToken.uri("seal-rsa"));
    expect(Buffer.from(await again.unwrap(wrapped)).equals(secret)).toBe(true);

    const tampered = Buffer.from(wrapped);
    tampered[100] = (tampered[100] ?? 0) ^ 1;
    await rejectsWith(again.unwrap(tampered), "FR_KEY_FORMAT");
  });

  it("refuses to generate a wrapper over an existing key and reports a missing one", async () => {
    await rejectsWith(km.generateWrapper(wrapToken.uri("seal-aes"), "aes-256"), "FR_KEY_EXISTS");
    await rejectsWith(km.openWrapper(wrapToken.uri("no-such-wrapper")), "FR_KEY_NOT_FOUND");
  });
});
