import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isFleetError } from "../errors/index.js";
import { type ParsedCsr, parseCsr, toPem, verifyCsrSignature } from "./index.js";
import { OPENSSL_EXPLICIT_P256, runPeer, tempDir } from "./test-helpers.js";

const dir = tempDir("fleetroot-csr-");
afterAll(() => dir.remove());

const SAN_EXT =
  "subjectAltName=DNS:drone-9.fleet.example,URI:spiffe://fleet.example/drone/9,IP:10.9.9.9,IP:fd00::9,email:ops@fleet.example";

/** Makes a key and a CSR with openssl; returns the CSR file content (PEM) and the key file. */
function opensslCsr(name: string, keyArgs: string[], extra: string[] = []): { pem: string; key: string } {
  const key = join(dir.path, `${name}.key`);
  const out = join(dir.path, `${name}.csr`);
  const gen = runPeer("openssl", ["genpkey", ...keyArgs, "-out", key]);
  expect(gen.status).toBe(0);
  const r = runPeer("openssl", [
    "req",
    "-new",
    "-key",
    key,
    "-subj",
    `/C=DE/O=Fleet/CN=${name}`,
    "-addext",
    SAN_EXT,
    "-out",
    out,
    ...extra,
  ]);
  expect(r.stderr).toBe("");
  return { pem: readFileSync(out, "utf8"), key };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "none";
  } catch (e) {
    return isFleetError(e) ? e.code : `not a FleetError: ${String(e)}`;
  }
}

const rsa = opensslCsr(
  "rsa",
  ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  [
    "-addext",
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext",
    "keyUsage=critical,digitalSignature,keyCertSign",
    "-addext",
    "extendedKeyUsage=clientAuth,1.3.6.1.4.1.99999.7",
  ],
);

describe("CSR from openssl req -new", () => {
  const variants: [string, () => string, Partial<ParsedCsr["key"]>, string][] = [
    ["RSA PKCS#1", () => rsa.pem, { type: "rsa", bits: 2048 }, "rsa-pkcs1"],
    ["RSA-PSS signature", () => readFileSync(pssCsr(), "utf8"), { type: "rsa", bits: 2048 }, "rsa-pss"],
    [
      "EC P-256",
      () => opensslCsr("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]).pem,
      { type: "ec", curve: "P-256" },
      "ecdsa",
    ],
    [
      "EC P-384",
      () => opensslCsr("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-sha384"]).pem,
      { type: "ec", curve: "P-384" },
      "ecdsa",
    ],
    ["Ed25519", () => opensslCsr("ed25519", ["-algorithm", "ED25519"]).pem, { type: "ed25519" }, "ed25519"],
  ];

  it.each(variants)("%s parses and verifies", (_name, make, key, family) => {
    const csr = parseCsr(make());
    expect(csr.key).toMatchObject(key);
    expect(csr.signatureAlgorithm.family).toBe(family);
    expect(csr.subject.attributes.map((a) => `${a.type}=${a.value}`)).toEqual([
      "C=DE",
      "O=Fleet",
      expect.stringMatching(/^CN=/),
    ]);
    expect(csr.san).toEqual({
      dns: ["drone-9.fleet.example"],
      uri: ["spiffe://fleet.example/drone/9"],
      ip: ["10.9.9.9", "fd00::9"],
      email: ["ops@fleet.example"],
    });
    expect(() => verifyCsrSignature(csr)).not.toThrow();
    // DER input parses to the same thing as PEM input.
    expect(parseCsr(csr.der).publicKey.equals(csr.publicKey)).toBe(true);
  });

  it("reports the requested CA flag, key usage and extended key usage", () => {
    const csr = parseCsr(rsa.pem);
    expect(csr.requested).toEqual({
      ca: { pathLen: 0 },
      keyUsage: ["digitalSignature", "keyCertSign"],
      extKeyUsage: ["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.99999.7"],
    });
    expect(csr.extensions.map((e) => [e.oid, e.critical])).toContainEqual(["2.5.29.19", true]);
  });

  it("refuses an EC public key whose point is not on its curve (FR_CSR_ALGORITHM)", () => {
    const good = parseCsr(
      opensslCsr("offcurve", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]).pem,
    );
    const der = Buffer.from(good.der);
    const at = der.indexOf(good.publicKey) + good.publicKey.length - 1; // last byte of Y
    der[at] = (der[at] as number) ^ 0x01;
    expect(codeOf(() => parseCsr(der))).toBe("FR_CSR_ALGORITHM");
  });

  it("refuses an EC key with explicit curve parameters (FR_CSR_ALGORITHM; was parsed as P-256 and signed)", () => {
    const explicit = opensslCsr("explicit", [...OPENSSL_EXPLICIT_P256]).pem;
    // openssl itself verifies the CSR: only the key encoding is at fault.
    const file = dir.write("explicit-check.csr", explicit);
    expect(runPeer("openssl", ["req", "-in", file, "-noout", "-verify"]).status).toBe(0);
    let err: unknown;
    try {
      parseCsr(explicit);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: "FR_CSR_ALGORITHM",
      detail: expect.stringMatching(/explicit curve parameters/),
    });
  });

  it("refuses a CSR with a flipped signature byte (FR_CSR_SIGNATURE)", () => {
    const csr = parseCsr(rsa.pem);
    const der = Buffer.from(csr.der);
    const last = der.length - 10;
    der[last] = (der[last] as number) ^ 0x01;
    expect(codeOf(() => verifyCsrSignature(parseCsr(der)))).toBe("FR_CSR_SIGNATURE");
  });

  it("refuses a CSR whose signed content was altered (FR_CSR_SIGNATURE)", () => {
    const der = Buffer.from(parseCsr(rsa.pem).der);
    const at = der.indexOf(Buffer.from("Fleet"));
    der[at] = "X".charCodeAt(0);
    const csr = parseCsr(der);
    expect(csr.subject.attributes[1]?.value).toBe("Xleet");
    expect(codeOf(() => verifyCsrSignature(csr))).toBe("FR_CSR_SIGNATURE");
  });

  it("refuses SHA-1 signatures as unsupported (FR_CSR_ALGORITHM)", () => {
    const out = join(dir.path, "sha1.csr");
    runPeer("openssl", ["req", "-new", "-key", rsa.key, "-subj", "/CN=old", "-sha1", "-out", out]);
    expect(codeOf(() => parseCsr(readFileSync(out)))).toBe("FR_CSR_ALGORITHM");
  });
});

describe("malformed CSR input gives a FleetError, never a stack trace", () => {
  const der = parseCsr(rsa.pem).der;
  const cases: [string, Uint8Array | string][] = [
    ["garbage text", "this is not a CSR"],
    ["garbage bytes", Buffer.from([0x30, 0x03, 0x02, 0x01])],
    ["random bytes", Buffer.from("a1b2c3d4e5f60718293a4b5c6d7e8f90", "hex")],
    ["truncated DER", der.subarray(0, der.length - 20)],
    ["trailing bytes", Buffer.concat([der, Buffer.from([0, 0])])],
    ["indefinite length", Buffer.from([0x30, 0x80, 0x30, 0x00, 0x00, 0x00])],
    ["wrong PEM label", toPem(der, "CERTIFICATE")],
    [
      "PEM with broken base64",
      "-----BEGIN CERTIFICATE REQUEST-----\n%%%%\n-----END CERTIFICATE REQUEST-----\n",
    ],
    ["mismatched PEM end", "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END X509 CRL-----\n"],
    ["huge CSR", Buffer.concat([Buffer.from([0x30, 0x83, 0x10, 0x00, 0x00]), Buffer.alloc(0x100000, 0x41)])],
    ["empty", Buffer.alloc(0)],
    ["deeply nested", Buffer.from("30" + nest(40), "hex")],
  ];
  it.each(cases)("%s → FR_CSR_INVALID", (_name, input) => {
    expect(codeOf(() => parseCsr(input))).toBe("FR_CSR_INVALID");
  });

  it("5,000 mutated and truncated CSRs give only FleetErrors (or parse)", () => {
    // Deterministic: a fixed-seed linear congruential generator flips 1–4 bytes, sometimes truncating.
    let seed = 20261123;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const notFleet: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(der);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let j = 0; j < flips; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const input = rnd() < 0.2 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      const code = codeOf(() => verifyCsrSignature(parseCsr(input)));
      if (code.startsWith("not a FleetError")) notFleet.push(`${code}: ${input.toString("hex")}`);
    }
    expect(notFleet.slice(0, 3)).toEqual([]);
  });
});

/** 40 nested SEQUENCEs, each 2 bytes longer than the one inside: depth-limit bait. */
function nest(depth: number): string {
  let inner = "3000";
  for (let i = 0; i < depth; i++) inner = "30" + (inner.length / 2).toString(16).padStart(2, "0") + inner;
  return (inner.length / 2).toString(16).padStart(2, "0") + inner;
}

function pssCsr(): string {
  const out = join(dir.path, "pss.csr");
  const r = runPeer("openssl", [
    "req",
    "-new",
    "-key",
    rsa.key,
    "-subj",
    "/C=DE/O=Fleet/CN=pss",
    "-addext",
    SAN_EXT,
    "-sha256",
    "-sigopt",
    "rsa_padding_mode:pss",
    "-sigopt",
    "rsa_pss_saltlen:32",
    "-out",
    out,
  ]);
  expect(r.status).toBe(0);
  return out;
}
