import "reflect-metadata";
import { X509Certificate as PeculiarCert, type SubjectAlternativeNameExtension } from "@peculiar/x509";
import { X509Certificate } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import type { KeyAlgorithm, SignatureScheme } from "../keys/types.js";
import { isFleetError } from "../errors/index.js";
import { buildCertificate, certificateParts, keyIdentifier, toPem } from "./index.js";
import { type TestChain, buildTestChain, runPeer, tempDir, testKey } from "./test-helpers.js";

const dir = tempDir("fleetroot-x509-");
afterAll(() => dir.remove());

const pem = (der: Uint8Array) => toPem(der, "CERTIFICATE");

function writeChain(name: string, c: TestChain) {
  return {
    root: dir.write(`${name}-root.pem`, pem(c.root.der)),
    int: dir.write(`${name}-int.pem`, pem(c.int.der)),
    leaf: dir.write(`${name}-leaf.pem`, pem(c.leaf.der)),
    full: dir.write(`${name}-chain.pem`, pem(c.leaf.der) + pem(c.int.der) + pem(c.root.der)),
  };
}

function opensslVerify(files: { root: string; int: string }, leaf: string) {
  return runPeer("openssl", ["verify", "-x509_strict", "-CAfile", files.root, "-untrusted", files.int, leaf]);
}

function certtoolVerify(chainFile: string) {
  return runPeer("certtool", ["--verify-chain", "--verify-profile=medium", "--infile", chainFile]);
}

const cases: [string, KeyAlgorithm, SignatureScheme | undefined, string][] = [
  ["P-256", "ecdsa-p256", undefined, "ecdsa-with-SHA256"],
  ["P-384", "ecdsa-p384", undefined, "ecdsa-with-SHA384"],
  ["Ed25519", "ed25519", undefined, "ED25519"],
  ["RSA-2048 PKCS#1", "rsa-2048", "rsa-pkcs1-sha256", "sha256WithRSAEncryption"],
  ["RSA-2048 PSS", "rsa-2048", "rsa-pss-sha256", "rsassaPss"],
];

describe.each(cases)("chain %s", (name, algorithm, scheme, sigName) => {
  let chain: TestChain;
  let files: ReturnType<typeof writeChain>;

  it("builds root → intermediate → leaf accepted by openssl -x509_strict", async () => {
    chain = await buildTestChain(algorithm, scheme);
    files = writeChain(name.replace(/\W/g, ""), chain);
    const r = opensslVerify(files, files.leaf);
    expect(r.output).toContain(": OK");
    expect(r.status).toBe(0);
  });

  it("is accepted by gnutls certtool --verify-chain", () => {
    const r = certtoolVerify(files.full);
    expect(r.output).toContain("Chain verification output: Verified. The certificate is trusted.");
    expect(r.output).not.toMatch(/Not verified/);
    expect(r.status).toBe(0);
  });

  it("carries every SAN kind, AIA, CRL DP and the chosen signature algorithm", () => {
    const text = runPeer("openssl", ["x509", "-noout", "-text", "-in", files.leaf]).stdout;
    expect(text).toContain(`Signature Algorithm: ${sigName}`);
    expect(text).toContain("DNS:drone-7.fleet.example");
    expect(text).toContain("URI:spiffe://fleet.example/drone/7");
    expect(text).toContain("IP Address:10.20.30.40");
    expect(text).toContain("IP Address:FD00:0:0:0:0:0:0:7");
    expect(text).toContain("email:ops@fleet.example");
    expect(text).toContain("OCSP - URI:http://127.0.0.1:8200/v1/pki/ocsp");
    expect(text).toContain("URI:http://127.0.0.1:8200/v1/pki/crl");
    if (scheme === "rsa-pss-sha256") {
      expect(text).toMatch(
        /Hash Algorithm: sha256[\s\S]*Mask Algorithm: mgf1 with sha256[\s\S]*Salt Length: 0x20/,
      );
    }
  });

  it("matches @peculiar/x509 and node:crypto field by field", () => {
    const peculiar = new PeculiarCert(chain.leaf.der);
    const node = new X509Certificate(chain.leaf.der);
    const int = new PeculiarCert(chain.int.der);
    expect(peculiar.serialNumber.toLowerCase().replace(/^00/, "")).toBe("c0ffee");
    expect(node.serialNumber.toLowerCase()).toBe("c0ffee");
    expect(peculiar.subject).toBe("CN=drone-7");
    expect(peculiar.issuer).toBe(int.subject);
    expect(Buffer.from(certificateParts(chain.leaf.der).issuer)).toEqual(
      Buffer.from(certificateParts(chain.int.der).subject),
    );
    expect(Math.abs(peculiar.notAfter.getTime() - new Date(node.validTo).getTime())).toBeLessThan(1000);
    expect(Buffer.from(peculiar.publicKey.rawData)).toEqual(Buffer.from(chain.leaf.key.signer.publicKey));
    const san = peculiar.getExtension("2.5.29.17") as SubjectAlternativeNameExtension | null;
    const names = san?.names.toJSON().map((n) => `${n.type}:${n.value}`);
    expect(names).toEqual([
      "dns:drone-7.fleet.example",
      "url:spiffe://fleet.example/drone/7",
      "ip:10.20.30.40",
      expect.stringMatching(/^ip:fd00:(0:){0,5}:?7$|^ip:fd00::7$/),
      "email:ops@fleet.example",
    ]);
    expect(node.checkIssued(new X509Certificate(chain.int.der))).toBe(true);
    expect(node.verify(new X509Certificate(chain.int.der).publicKey)).toBe(true);
    // SKI/AKI chain: the leaf's AKI is the intermediate's SKI.
    const ski = certificateParts(chain.int.der).subjectKeyId;
    expect(ski && Buffer.from(ski)).toEqual(keyIdentifier(chain.int.key.signer.publicKey));
    expect(node.toLegacyObject().ext_key_usage).toEqual(["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1"]);
  });

  it("a leaf outside the intermediate's name constraints fails verification", async () => {
    const der = await chain.issue({
      serial: 99n,
      subject: [{ type: "CN", value: "rogue" }],
      publicKey: testKey("ecdsa-p256").signer.publicKey,
      san: { dns: ["forbidden.fleet.example"] },
    });
    const r = opensslVerify(files, dir.write(`${name.replace(/\W/g, "")}-rogue.pem`, pem(der)));
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/excluded subtree violation/);
  });
});

describe("certificate template checks", () => {
  const key = testKey("ecdsa-p256");
  const base = {
    serial: 1n,
    subject: [{ type: "CN", value: "x" }],
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2027, 0, 1)),
    publicKey: key.signer.publicKey,
  };
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => "none",
      (e: unknown) => (isFleetError(e) ? e.code : String(e)),
    );

  it("refuses serials over 20 octets, zero and negative (RFC 5280 4.1.2.2)", async () => {
    expect(await code(buildCertificate({ ...base, serial: Buffer.alloc(21, 1) }, key.signer))).toBe(
      "FR_CERT_TEMPLATE",
    );
    expect(await code(buildCertificate({ ...base, serial: Buffer.alloc(20, 0xff) }, key.signer))).toBe(
      "FR_CERT_TEMPLATE",
    );
    expect(await code(buildCertificate({ ...base, serial: 0n }, key.signer))).toBe("FR_CERT_TEMPLATE");
    expect(await code(buildCertificate({ ...base, serial: -5n }, key.signer))).toBe("FR_CERT_TEMPLATE");
    expect(await code(buildCertificate({ ...base, serial: Buffer.alloc(20, 0x7f) }, key.signer))).toBe(
      "none",
    );
  });

  it("refuses an empty subject without SAN, a wrong self-signer and reversed validity", async () => {
    expect(await code(buildCertificate({ ...base, subject: [] }, key.signer))).toBe("FR_CERT_TEMPLATE");
    expect(await code(buildCertificate(base, testKey("ecdsa-p256").signer))).toBe("FR_CERT_TEMPLATE");
    expect(await code(buildCertificate({ ...base, notAfter: base.notBefore }, key.signer))).toBe(
      "FR_CERT_TEMPLATE",
    );
    expect(await code(buildCertificate({ ...base, san: { ip: ["300.1.1.1"] } }, key.signer))).toBe(
      "FR_CERT_TEMPLATE",
    );
    expect(await code(buildCertificate(base, { ...key.signer, defaultScheme: "ed25519" }))).toBe(
      "FR_KEY_ALGORITHM",
    );
  });

  it("reports a validity end past the Date range as out of range, not as reversed validity", async () => {
    const tooFar = new Date(base.notBefore.getTime() + 9999999999 * 3600 * 1000);
    expect(Number.isNaN(tooFar.getTime())).toBe(true);
    await expect(buildCertificate({ ...base, notAfter: tooFar }, key.signer)).rejects.toMatchObject({
      code: "FR_VALIDATION",
      message: expect.stringMatching(/year 9999/) as unknown,
    });
  });

  it("writes UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5)", async () => {
    const der = await buildCertificate(
      {
        ...base,
        notBefore: new Date(Date.UTC(2049, 11, 31, 23, 59, 59)),
        notAfter: new Date(Date.UTC(2050, 0, 1)),
      },
      key.signer,
    );
    const hex = der.toString("hex");
    expect(hex).toContain("170d" + Buffer.from("491231235959Z").toString("hex"));
    expect(hex).toContain("180f" + Buffer.from("20500101000000Z").toString("hex"));
    const text = runPeer("openssl", ["x509", "-noout", "-dates"], Buffer.from(pem(der))).stdout;
    expect(text).toContain("notAfter=Jan  1 00:00:00 2050 GMT");
  });
});
