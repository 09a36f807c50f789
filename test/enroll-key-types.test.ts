/**
 * Which device keys the CA, the registries and the proofs accept — one set everywhere, so a key that
 * is registered can enroll and one that cannot is refused when it is registered, naming its type.
 */
import { constants, createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fromPem } from "../src/crypto/index.js";
import { popMessage } from "../src/enroll/index.js";
import { OPENSSL_EXPLICIT_P256, runPeer } from "../src/crypto/test-helpers.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";

const EXPLICIT_P256 = [...OPENSSL_EXPLICIT_P256];

describe("device key types (CA, registered keys, PSA keys, proofs)", () => {
  let f: Fleet;
  const openssl = (...args: string[]) => {
    const r = runPeer("openssl", args);
    expect(r.status, r.output).toBe(0);
    return r.stdout;
  };
  /** A private key made by openssl genpkey (or genpkey -genparam for DSA) in the fleet's temp dir. */
  const makeKey = (name: string, args: string[]): string => {
    const file = join(f.dir, `${name}.key`);
    if (args[0] === "DSA") {
      const params = join(f.dir, `${name}.params`);
      openssl(
        "genpkey",
        "-genparam",
        "-algorithm",
        "DSA",
        "-pkeyopt",
        "dsa_paramgen_bits:2048",
        "-out",
        params,
      );
      openssl("genpkey", "-paramfile", params, "-out", file);
    } else openssl("genpkey", ...args, "-out", file);
    return file;
  };
  const publicPem = (key: string) => openssl("pkey", "-in", key, "-pubout");
  const csrOf = (key: string, cn: string) => openssl("req", "-new", "-key", key, "-subj", `/CN=${cn}`);
  const register = (device_id: string, public_key: string) =>
    f.api("POST", "fleet/provisioners/keys/keys", { device_id, public_key });
  const nonce = async () => ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
  const certCount = async () =>
    ((await f.api("GET", "pki/certs?list=true")).data as { keys?: string[] }).keys?.length ?? 0;

  /** The registered-key enrollment request: CSR plus a proof over nonce ‖ SHA-256(CSR) with `key`. */
  async function enrollBody(key: string, csr: string, scheme?: string): Promise<Record<string, unknown>> {
    const n = await nonce();
    const priv = createPrivateKey(readFileSync(key));
    const msg = popMessage(Buffer.from(n, "base64url"), fromPem(csr, "CERTIFICATE REQUEST").der);
    const type = priv.asymmetricKeyType;
    const sig =
      type === "ed25519" || type === "ed448"
        ? sign(null, msg, priv)
        : type === "rsa-pss"
          ? sign("sha256", msg, { key: priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
          : sign(scheme === "ecdsa-sha384" ? "sha384" : "sha256", msg, priv);
    return {
      provisioner: "keys",
      csr,
      nonce: n,
      signature: sig.toString("base64"),
      ...(scheme ? { signature_scheme: scheme } : {}),
    };
  }

  beforeAll(async () => {
    f = await startFleet();
    const p = await f.api("POST", "fleet/provisioners/keys", { type: "registered-key", role: "device" });
    expect(p.status, JSON.stringify(p)).toBe(200);
  });
  afterAll(async () => f?.close());
  // Refused enrollments count against the client's failure budget (20 a minute): start each test fresh.
  beforeEach(() => f.clock.advance(61_000));

  it("pki/sign refuses a CSR whose EC key has explicit curve parameters (was 200, a certificate openssl -x509_strict rejects)", async () => {
    const csr = csrOf(makeKey("explicit-sign", EXPLICIT_P256), "x");
    const before = await certCount();
    const r = await f.api("POST", "pki/sign/device", { csr });
    expect(r, JSON.stringify(r)).toMatchObject({
      status: 400,
      code: "FR_CSR_ALGORITHM",
      errors: [expect.stringMatching(/explicit curve parameters/)],
    });
    expect(await certCount()).toBe(before);
  });

  it("refuses to register keys that could never enroll, naming the type and the accepted ones (DSA, RSA-1024, explicit EC were 200)", async () => {
    const cases: [string, string[], RegExp][] = [
      ["dsa", ["DSA"], /is a DSA key/],
      ["rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], /is an RSA-1024 key/],
      ["explicit", EXPLICIT_P256, /is an EC key with explicit curve parameters/],
      ["x25519", ["-algorithm", "X25519"], /is an X25519 key/],
    ];
    for (const [name, args, why] of cases) {
      const r = await register(`bad-${name}`, publicPem(makeKey(`reg-${name}`, args)));
      expect(r, name).toMatchObject({ status: 400, code: "FR_VALIDATION" });
      const msg = String((r.errors as string[])[0]);
      expect(msg, name).toMatch(why);
      expect(msg, name).toMatch(
        /RSA of 2048 bits or more, EC on P-256, P-384 or P-521 \(named curve\), Ed25519 or Ed448/,
      );
      // Nothing was written: no pending device.
      expect((await f.api("GET", `fleet/devices/bad-${name}`)).status, name).toBe(404);
    }
  });

  it("refuses PSA attestation keys that cannot sign a PSA token (RSA was 200)", async () => {
    const psa = await f.api("POST", "fleet/provisioners/psa", {
      type: "psa",
      role: "device",
      reference_values: [{ measurement_value: "aa".repeat(32) }],
    });
    expect(psa.status, JSON.stringify(psa)).toBe(200);
    for (const [name, args] of [
      ["rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]],
      ["explicit", EXPLICIT_P256],
    ] as const) {
      const r = await f.api("POST", "fleet/provisioners/psa/attestation-keys", {
        instance_id: "01" + (name === "rsa" ? "22" : "33").repeat(32),
        device_id: `psa-${name}`,
        public_key: publicPem(makeKey(`psa-${name}`, [...args])),
      });
      expect(r, name).toMatchObject({
        status: 400,
        code: "FR_VALIDATION",
        errors: [expect.stringMatching(/cannot sign PSA attestation tokens; use EC on P-256/)],
      });
      expect((await f.api("GET", `fleet/devices/psa-${name}`)).status).toBe(404);
    }
  });

  it("enrolls registered keys of every type the CA certifies (P-521, RSA-4096, RSA-PSS, Ed448 were refused as proofs that do not verify)", async () => {
    const cases: [string, string[], string?][] = [
      ["p521", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]],
      ["p256-sha384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ecdsa-sha384"],
      ["rsa4096", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"]],
      ["rsapss", ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]],
      ["ed448", ["-algorithm", "ED448"]],
    ];
    for (const [name, args, scheme] of cases) {
      const key = makeKey(`ok-${name}`, args);
      const reg = await register(`ok-${name}`, publicPem(key));
      expect(reg.status, `${name}: ${JSON.stringify(reg)}`).toBe(200);
      const r = await f.api("POST", "fleet/enroll", await enrollBody(key, csrOf(key, `ok-${name}`), scheme));
      expect(r.status, `${name}: ${JSON.stringify(r)}`).toBe(200);
      expect((r.data as { device_id: string }).device_id).toBe(`ok-${name}`);
    }
  });

  it("a scheme that does not fit the key is named as such, not as a proof that does not verify", async () => {
    const key = makeKey("fit", ["-algorithm", "ED25519"]);
    expect((await register("fit-dev", publicPem(key))).status).toBe(200);
    const r = await f.api("POST", "fleet/enroll", {
      ...(await enrollBody(key, csrOf(key, "fit-dev"))),
      signature_scheme: "ecdsa-sha256",
    });
    expect(r).toMatchObject({
      status: 400,
      code: "FR_VALIDATION",
      errors: [expect.stringMatching(/ecdsa-sha256 does not fit a ed25519 key; use ed25519/)],
    });
  });

  it("a weak key registered before these checks is refused at enrollment as a key type, not as a failed proof (was 403 'does not verify')", async () => {
    const key = makeKey("legacy-rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
    // As an older server stored it: straight into the table, past today's registration check.
    const spki = fromPem(publicPem(key), "PUBLIC KEY").der;
    const { createHash } = await import("node:crypto");
    const db = f.t.server.core.store.db as unknown as {
      insertInto(t: string): { values(v: Record<string, unknown>): { execute(): Promise<unknown> } };
    };
    await db
      .insertInto("fleet_registered_key")
      .values({
        fingerprint: createHash("sha256").update(spki).digest("hex"),
        provisioner: "keys",
        device_id: "legacy-dev",
        spki,
        created_at: Date.now(),
      })
      .execute();
    const before = await certCount();
    expect(before).toBeGreaterThan(0); // the earlier tests' certificates: the count is read correctly
    const body = await enrollBody(key, csrOf(key, "legacy-dev"));
    const r = await f.api("POST", "fleet/enroll", body);
    expect(r).toMatchObject({
      status: 400,
      code: "FR_CSR_ALGORITHM",
      errors: [expect.stringMatching(/RSA-1024, which is not accepted; use RSA of 2048 bits or more/)],
    });
    expect(await certCount()).toBe(before);
    // The nonce was not spent: a second request with it gets past the nonce to the same refusal.
    expect(await f.api("POST", "fleet/enroll", body)).toMatchObject({
      status: 400,
      code: "FR_CSR_ALGORITHM",
    });
  });
});
