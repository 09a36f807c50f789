import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFleetError } from "../errors/index.js";
import { type CrlEntry, buildCrl, certificateParts, encodeCrlEntry, fromPem, toPem } from "./index.js";
import { type TestChain, buildTestChain, runPeer, tempDir, testKey } from "./test-helpers.js";

const dir = tempDir("fleetroot-crl-");
afterAll(() => dir.remove());

const CRL_URL = "http://127.0.0.1:8200/v1/pki/crl";
const HOUR = 3_600_000;
let chain: TestChain;
let goodLeaf: Buffer;
const f = { root: "", int: "", cas: "", leaf: "", good: "", crl: "" };

beforeAll(async () => {
  chain = await buildTestChain("ecdsa-p256", undefined, "ecdsa-p256", { crl: CRL_URL });
  goodLeaf = await chain.issue({
    serial: 0x1234n,
    subject: [{ type: "CN", value: "drone-8" }],
    publicKey: testKey("ecdsa-p256").signer.publicKey,
    san: { dns: ["drone-8.fleet.example"] },
  });
  const pem = (d: Uint8Array) => toPem(d, "CERTIFICATE");
  f.root = dir.write("root.pem", pem(chain.root.der));
  f.int = dir.write("int.pem", pem(chain.int.der));
  f.cas = dir.write("cas.pem", pem(chain.int.der) + pem(chain.root.der));
  f.leaf = dir.write("leaf.pem", pem(chain.leaf.der));
  f.good = dir.write("good.pem", pem(goodLeaf));
});

function crlFor(
  issuer: { der: Buffer; key: TestChain["root"]["key"] },
  entries: CrlEntry[],
  extra: object = {},
) {
  const parts = certificateParts(issuer.der);
  const now = Date.now();
  return buildCrl(
    {
      issuerNameDer: parts.subject,
      issuerSki: parts.subjectKeyId ?? Buffer.alloc(0),
      thisUpdate: new Date(now - HOUR),
      nextUpdate: new Date(now + 24 * HOUR),
      crlNumber: 7,
      entries,
      ...extra,
    },
    issuer.key.signer,
  );
}

describe("CRL", () => {
  it("a full CRL revoking the leaf verifies and makes openssl refuse exactly that leaf", async () => {
    const crl = await crlFor(
      chain.int,
      [
        { serial: 0x77n, revokedAt: new Date(Date.now() - 2 * HOUR) },
        {
          serial: certificateParts(chain.leaf.der).serial,
          revokedAt: new Date(Date.now() - HOUR),
          reason: "keyCompromise",
        },
      ],
      { idp: { uris: [CRL_URL], onlyContainsUserCerts: true } },
    );
    f.crl = dir.write("int.crl.pem", toPem(crl, "X509 CRL"));
    const check = runPeer("openssl", ["crl", "-in", f.crl, "-CAfile", f.cas, "-noout", "-text"]);
    expect(check.output).toContain("verify OK");
    expect(check.stdout).toContain("X509v3 CRL Number: \n                7");
    expect(check.stdout).toContain("Key Compromise");
    expect(check.stdout).toContain("Issuing Distribution Point: critical");
    expect(check.stdout).toMatch(/Serial Number: 77\n\s+Revocation Date:[^\n]*\n\s+Serial Number: C0FFEE/);

    const revoked = runPeer("openssl", [
      "verify",
      "-x509_strict",
      "-crl_check",
      "-CAfile",
      f.root,
      "-untrusted",
      f.int,
      "-CRLfile",
      f.crl,
      f.leaf,
    ]);
    expect(revoked.status).not.toBe(0);
    expect(revoked.output).toContain("certificate revoked");

    const ok = runPeer("openssl", [
      "verify",
      "-x509_strict",
      "-crl_check",
      "-CAfile",
      f.root,
      "-untrusted",
      f.int,
      "-CRLfile",
      f.crl,
      f.good,
    ]);
    expect(ok.output).toContain(": OK");
    expect(ok.status).toBe(0);
  });

  it("-crl_check_all with a root CRL for the intermediate: revoked leaf fails, other leaf passes", async () => {
    const rootCrl = await crlFor(chain.root, []);
    const both = dir.write("both.crl.pem", toPem(rootCrl, "X509 CRL") + readFileSync(f.crl, "utf8"));
    const args = (leaf: string) => [
      "verify",
      "-x509_strict",
      "-crl_check_all",
      "-CAfile",
      f.root,
      "-untrusted",
      f.int,
      "-CRLfile",
      both,
      leaf,
    ];
    const ok = runPeer("openssl", args(f.good));
    expect(ok.output).toContain(": OK");
    expect(ok.status).toBe(0);
    const revoked = runPeer("openssl", args(f.leaf));
    expect(revoked.status).not.toBe(0);
    expect(revoked.output).toContain("certificate revoked");
  });

  it("gnutls certtool verifies the CRL signature", () => {
    const r = runPeer("certtool", ["--verify-crl", "--load-ca-certificate", f.int, "--infile", f.crl]);
    expect(r.output).toContain("Verification output: Verified.");
    expect(r.status).toBe(0);
  });

  it("gnutls certtool refuses the revoked leaf because of the CRL and accepts the other", () => {
    const chainOf = (leaf: string) =>
      dir.write(
        `chain-${leaf.length}-${Math.random()}.pem`,
        readFileSync(leaf, "utf8") + readFileSync(f.int, "utf8"),
      );
    const args = (file: string) => [
      "--verify",
      "--verify-profile=medium",
      "--load-ca-certificate",
      f.root,
      "--load-crl",
      f.crl,
      "--infile",
      file,
    ];
    const revoked = runPeer("certtool", args(chainOf(f.leaf)));
    expect(revoked.output).toContain(
      "Chain verification output: Not verified. The certificate is NOT trusted. The certificate chain is revoked.",
    );
    expect(revoked.status).not.toBe(0);
    const ok = runPeer("certtool", args(chainOf(f.good)));
    expect(ok.output).toContain("Chain verification output: Verified. The certificate is trusted.");
    expect(ok.status).toBe(0);
  });

  it("a delta CRL carries a critical deltaCRLIndicator with the base CRL number", async () => {
    const delta = await crlFor(
      chain.int,
      [{ serial: 0x99n, revokedAt: Date.now(), reason: "removeFromCRL" }],
      {
        crlNumber: 8,
        deltaOf: 7,
      },
    );
    const text = runPeer("openssl", ["crl", "-inform", "DER", "-noout", "-text"], delta).stdout;
    expect(text).toMatch(/X509v3 Delta CRL Indicator: critical\s+7/);
    expect(text).toMatch(/X509v3 CRL Number:\s+8/);
    expect(text).toContain("Remove From CRL");
  });

  it("omits reasonCode for unspecified and refuses removeFromCRL in a full CRL (5.3.1)", async () => {
    const entry = encodeCrlEntry({ serial: 5n, revokedAt: Date.UTC(2026, 0, 1), reason: "unspecified" });
    // SEQUENCE { INTEGER 5, UTCTime } and nothing else
    expect(entry.toString("hex")).toBe("3012020105170d" + Buffer.from("260101000000Z").toString("hex"));
    const err = await crlFor(chain.int, [{ serial: 5n, revokedAt: 0, reason: "removeFromCRL" }]).catch(
      (e: unknown) => e,
    );
    expect(isFleetError(err) && err.code).toBe("FR_VALIDATION");
  });

  it("an empty CRL omits revokedCertificates and still verifies", async () => {
    const crl = await crlFor(chain.int, []);
    const r = runPeer("openssl", ["crl", "-inform", "DER", "-CAfile", f.cas, "-noout", "-text"], crl);
    expect(r.output).toContain("verify OK");
    expect(r.stdout).toContain("No Revoked Certificates.");
  });

  it("builds 100,000 entries well under a second plus one signature, and openssl reads them all", async () => {
    const base = Date.now() - 10 * HOUR;
    const entries: CrlEntry[] = [];
    for (let i = 0; i < 100_000; i++) {
      const serial = Buffer.alloc(16);
      serial.writeUInt32BE(i + 1, 12);
      serial[0] = 0x40 | (i & 0x3f);
      entries.push({
        serial,
        revokedAt: base + i * 1000,
        ...(i % 3 ? { reason: "superseded" as const } : {}),
      });
    }
    const t0 = performance.now();
    const crl = await crlFor(chain.int, entries);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000);
    const file = dir.write("big.crl", crl);
    const r = runPeer("openssl", ["crl", "-inform", "DER", "-in", file, "-CAfile", f.cas, "-noout", "-text"]);
    expect(r.output).toContain("verify OK");
    expect(r.stdout.match(/Serial Number:/g)?.length).toBe(100_000);
    // PEM round trip with the label OpenSSL requires
    expect(fromPem(toPem(crl, "X509 CRL"), "X509 CRL").der.equals(crl)).toBe(true);
  });
});
