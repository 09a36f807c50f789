import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPem, toPem } from "../src/crypto/index.js";
import { type PkiServer, opensslCsr, run, setupHierarchy, startPkiServer, tempDir } from "./helpers/pki.js";

/** Role enforcement and bad input: each refusal is a 400 naming what was wrong, and writes no row. */
describe("pki role enforcement and bad input", () => {
  const dir = tempDir();
  let s: PkiServer;
  const rows = async () =>
    (
      await s.t.server.core.store.db
        .selectFrom("pki_cert" as never)
        .selectAll()
        .execute()
    ).length;

  beforeAll(async () => {
    s = await startPkiServer(`sqlite:${join(dir, "fr.db")}`, { dataDir: dir });
    await setupHierarchy(s);
  }, 30_000);
  afterAll(async () => {
    await s?.t.close();
  });

  async function refused(
    body: Record<string, unknown>,
    code: string,
    message: RegExp | string,
    path = "pki/sign/device",
  ) {
    const before = await rows();
    const r = await s.call("POST", path, body);
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json().code).toBe(code);
    expect(r.json().errors[0]).toMatch(message);
    expect(await rows()).toBe(before);
  }

  const csr = (name: string, opts: Parameters<typeof opensslCsr>[2]) => opensslCsr(dir, name, opts).csr;

  it("a name outside the role: DNS SAN, CN, URI SAN", async () => {
    await refused(
      { csr: csr("n1", { addext: ["subjectAltName=DNS:ok.fleet.example,DNS:evil.example.com"] }) },
      "FR_PKI_ROLE_DENIED",
      /DNS name "evil\.example\.com" is not allowed \(role "device"\)/,
    );
    await refused(
      { csr: csr("n2", { subj: "/CN=\\/other\\/enclave" }) },
      "FR_PKI_ROLE_DENIED",
      /common name "\/other\/enclave"/,
    );
    await refused(
      { csr: csr("n3", { addext: ["subjectAltName=URI:spiffe://other.example/x"] }) },
      "FR_PKI_ROLE_DENIED",
      /URI SAN "spiffe:\/\/other\.example\/x"/,
    );
    await refused({ common_name: "a.evil.example" }, "FR_PKI_ROLE_DENIED", /not allowed/, "pki/issue/device");
  });

  it("a key type or size outside the role", async () => {
    await refused(
      { csr: csr("k1", { key: "rsa:2048" }) },
      "FR_PKI_ROLE_DENIED",
      /the key is RSA 2048; the role allows only EC keys/,
    );
    expect(
      (
        await s.call("POST", "pki/roles/p384", {
          allowed_domains: "fleet.example",
          allow_subdomains: true,
          key_bits: 384,
        })
      ).statusCode,
    ).toBe(200);
    await refused(
      { csr: csr("k2", {}) },
      "FR_PKI_ROLE_DENIED",
      /EC P-256; the role allows only P-384/,
      "pki/sign/p384",
    );
  });

  it("a TTL beyond max_ttl, an EKU and a CA flag the role does not grant", async () => {
    await refused(
      { csr: csr("t1", {}), ttl: "8000h" },
      "FR_PKI_ROLE_DENIED",
      /ttl 28800000s exceeds the role's max_ttl of 2592000s/,
    );
    await refused(
      { csr: csr("e1", { addext: ["extendedKeyUsage=codeSigning"] }) },
      "FR_PKI_ROLE_DENIED",
      /extended key usage codeSigning is not allowed/,
    );
    await refused(
      { csr: csr("c1", { addext: ["basicConstraints=critical,CA:TRUE"] }) },
      "FR_PKI_ROLE_DENIED",
      /asks for a CA certificate/,
    );
  });

  it("a request within the role gets exactly the role's profile (nothing else copied)", async () => {
    const r = await s.call("POST", "pki/sign/device", {
      csr: csr("good", {
        subj: "/CN=g.fleet.example/O=Requested Org/OU=Requested Unit",
        addext: [
          "extendedKeyUsage=clientAuth",
          "1.2.3.4.5=ASN1:UTF8String:smuggled",
          "keyUsage=digitalSignature",
        ],
      }),
    });
    expect(r.statusCode, r.body).toBe(200);
    const text = run("openssl", ["x509", "-noout", "-text"], r.json().data.certificate).out;
    expect(text).toContain("Subject: CN = g.fleet.example");
    expect(text).not.toContain("Requested Org");
    expect(text).not.toContain("smuggled");
    expect(text).toContain("TLS Web Client Authentication");
    expect(text).not.toContain("TLS Web Server Authentication");
    expect(text).toContain("CA:FALSE");
  });

  it("a ttl that is neither a duration string nor a number is a 400, not a 500 (was FR_INTERNAL)", async () => {
    for (const ttl of [true, {}, ["1h"]]) {
      await refused({ csr: csr("tt", {}), ttl }, "FR_VALIDATION", /ttl must be a duration/);
      await refused(
        { common_name: "t.fleet.example", ttl },
        "FR_VALIDATION",
        /ttl must be/,
        "pki/issue/device",
      );
      for (const path of [
        "pki/root/generate/internal",
        "pki/root/sign-intermediate",
        "pki/issuer/root/ocsp-signer",
      ]) {
        const r = await s.call("POST", path, { common_name: "X", csr: csr("tt", {}), ttl });
        expect(r.statusCode, `${path} ${r.body}`).toBe(400);
        expect(r.json().code).toBe("FR_VALIDATION");
      }
    }
  });

  it("a refused root or intermediate leaves no key file behind (was: one orphan key per refusal)", async () => {
    const keys = () => readdirSync(join(dir, "pki")).length;
    const before = keys();
    const refusedCa = async (path: string, body: Record<string, unknown>, code: string, msg: RegExp) => {
      const r = await s.call("POST", path, body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().code).toBe(code);
      expect(r.json().errors[0]).toMatch(msg);
    };
    // Was "notAfter must be later than notBefore": the end is past what a Date (and X.509) can hold.
    await refusedCa(
      "pki/root/generate/internal",
      { common_name: "Far", ttl: "9999999999h" },
      "FR_VALIDATION",
      /would end after the year 9999/,
    );
    await refusedCa(
      "pki/root/generate/internal",
      { common_name: "Far", ttl: "78840000h" },
      "FR_VALIDATION",
      /would end after the year 9999/,
    );
    for (const path of ["pki/root/generate/internal", "pki/intermediate/generate/internal"]) {
      await refusedCa(path, { common_name: "x".repeat(65) }, "FR_CERT_TEMPLATE", /CN must be 1 to 64/);
      await refusedCa(path, { common_name: "x", country: "USA" }, "FR_CERT_TEMPLATE", /two-letter/);
    }
    expect(keys()).toBe(before);
  });

  it("sign-intermediate respects the issuer's pathLen (was: a CA signed under pathLen 0, unusable)", async () => {
    // After setupHierarchy the default issuer is the intermediate, made with max_path_length 0.
    await refused(
      { csr: csr("sub1", {}) },
      "FR_PKI_ISSUER_INVALID",
      /issuer "issuing" has pathLen 0 and may not sign CA certificates/,
      "pki/root/sign-intermediate",
    );
    const limited = await s.call("POST", "pki/root/generate/internal", {
      common_name: "Limited Root",
      issuer_name: "limited",
      max_path_length: 1,
    });
    expect(limited.statusCode, limited.body).toBe(200);
    await refused(
      { csr: csr("sub2", {}), max_path_length: 1 },
      "FR_VALIDATION",
      /max_path_length 1 is too large: issuer "limited" has pathLen 1, so at most 0/,
      "pki/issuer/limited/sign-intermediate",
    );
    const ok = await s.call("POST", "pki/issuer/limited/sign-intermediate", { csr: csr("sub3", {}) });
    expect(ok.statusCode, ok.body).toBe(200);
    const text = run("openssl", ["x509", "-noout", "-text"], ok.json().data.certificate as string).out;
    expect(text).toContain("CA:TRUE, pathlen:0");
  });

  it("a CSR whose signature does not verify", async () => {
    const der = fromPem(csr("sig", {}), "CERTIFICATE REQUEST").der;
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01;
    await refused({ csr: toPem(der, "CERTIFICATE REQUEST") }, "FR_CSR_SIGNATURE", /signature/);
  });

  it("malformed PEM, truncated DER, a huge CSR, unsupported algorithms", async () => {
    await refused(
      { csr: "-----BEGIN CERTIFICATE REQUEST-----\nnot base64!!\n-----END CERTIFICATE REQUEST-----\n" },
      "FR_CSR_INVALID",
      /does not hold valid base64/,
    );
    await refused({ csr: "hello" }, "FR_CSR_INVALID", /no -----BEGIN/);
    const der = fromPem(csr("trunc", {}), "CERTIFICATE REQUEST").der;
    await refused(
      { csr: toPem(der.subarray(0, der.length - 20), "CERTIFICATE REQUEST") },
      "FR_CSR_INVALID",
      /CSR/,
    );
    const huge = toPem(Buffer.alloc(100 * 1024, 0x30), "CERTIFICATE REQUEST");
    await refused({ csr: huge }, "FR_CSR_INVALID", /larger than the 65536-byte limit/);
    await refused(
      { csr: csr("k1curve", { key: "ec:secp256k1" }) },
      "FR_CSR_ALGORITHM",
      /curve secp256k1 is not supported/,
    );
    const sha1 = run("openssl", [
      "req",
      "-new",
      "-key",
      join(dir, "sig.key"),
      "-subj",
      "/CN=s.fleet.example",
      "-sha1",
    ]);
    await refused({ csr: sha1.stdout }, "FR_CSR_ALGORITHM", /SHA-1/);
    await refused({}, "FR_VALIDATION", /csr is required/);
  });

  it("invalid role definitions are refused with the field named", async () => {
    const r = await s.call("POST", "pki/roles/bad", { key_type: "dsa" });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe("FR_PKI_ROLE_INVALID");
    expect(r.json().errors[0]).toContain("key_type");
    const r2 = await s.call("POST", "pki/roles/bad", { ttl: "90d", max_ttl: "30d" });
    expect(r2.json().errors[0]).toContain("ttl must not exceed max_ttl");
    expect((await s.call("POST", "pki/revoke", { serial_number: "zz" })).json().code).toBe("FR_VALIDATION");
  });
});
