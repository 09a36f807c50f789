/**
 * Test-only helpers for src/crypto: a Signer over node:crypto KeyObjects (so these tests do not depend on
 * src/keys, which sits above crypto), a bounded runner for the peers (openssl, certtool) and temp dirs.
 * The Signer follows the contract: DER ECDSA, Ed25519 over the message, RSA PKCS#1 v1.5 or PSS with
 * salt = hash length.
 */
import { spawnSync } from "node:child_process";
import { type KeyObject, constants, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyAlgorithm, SignatureScheme, Signer } from "../keys/types.js";
import { type CertificateTemplate, buildCertificate, createIssuanceTemplate } from "./certificate.js";

const defaults: Record<KeyAlgorithm, SignatureScheme> = {
  "ecdsa-p256": "ecdsa-sha256",
  "ecdsa-p384": "ecdsa-sha384",
  ed25519: "ed25519",
  "rsa-2048": "rsa-pkcs1-sha256",
  "rsa-3072": "rsa-pkcs1-sha256",
};

export interface TestKey {
  readonly signer: Signer;
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM, for peers such as openssl that need the key in a file. */
  readonly privatePem: string;
}

function generate(algorithm: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (algorithm) {
    case "ecdsa-p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "ecdsa-p384":
      return generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "ed25519":
      return generateKeyPairSync("ed25519");
    case "rsa-2048":
      return generateKeyPairSync("rsa", { modulusLength: 2048 });
    case "rsa-3072":
      return generateKeyPairSync("rsa", { modulusLength: 3072 });
  }
}

export function signerFor(
  privateKey: KeyObject,
  publicKey: KeyObject,
  algorithm: KeyAlgorithm,
  defaultScheme: SignatureScheme = defaults[algorithm],
): Signer {
  return {
    uri: `test:${algorithm}`,
    algorithm,
    publicKey: publicKey.export({ format: "der", type: "spki" }),
    defaultScheme,
    sign(data, scheme = defaultScheme) {
      const hash = scheme.endsWith("384") ? "sha384" : "sha256";
      if (scheme === "ed25519") return Promise.resolve(sign(null, data, privateKey));
      if (scheme.startsWith("rsa-pss")) {
        const saltLength = hash === "sha384" ? 48 : 32;
        return Promise.resolve(
          sign(hash, data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }),
        );
      }
      return Promise.resolve(sign(hash, data, privateKey));
    },
  };
}

/** A fresh key of the given algorithm and a Signer over it. */
export function testKey(algorithm: KeyAlgorithm, defaultScheme?: SignatureScheme): TestKey {
  const { privateKey, publicKey } = generate(algorithm);
  return {
    signer: signerFor(privateKey, publicKey, algorithm, defaultScheme),
    privateKey,
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

export interface PeerResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for assertions that do not care which stream a peer used. */
  readonly output: string;
}

/** `openssl genpkey`/`req -newkey` options for a P-256 key written with the curve's explicit parameters (RFC 5480 forbids them). */
export const OPENSSL_EXPLICIT_P256: readonly string[] = [
  "-algorithm",
  "EC",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-pkeyopt",
  "ec_param_enc:explicit",
];

/** Runs a peer tool with a time bound; never throws on a non-zero exit (tests assert on it). */
export function runPeer(cmd: string, args: readonly string[], input?: Uint8Array): PeerResult {
  const r = spawnSync(cmd, args, {
    timeout: 30_000,
    maxBuffer: 256 * 1024 * 1024,
    encoding: "utf8",
    ...(input ? { input } : {}),
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
}

/** A temp directory with a `write(name, data)` helper and cleanup. */
export function tempDir(prefix: string): {
  path: string;
  write(name: string, data: string | Uint8Array): string;
  remove(): void;
} {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    write(name, data) {
      const file = join(path, name);
      writeFileSync(file, data);
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

export interface TestChain {
  readonly root: { der: Buffer; key: TestKey };
  readonly int: { der: Buffer; key: TestKey };
  readonly leaf: { der: Buffer; key: TestKey };
  /** The intermediate's issuance template (for more leaves). */
  readonly issue: (
    tpl: Omit<CertificateTemplate, "notBefore" | "notAfter"> & Partial<CertificateTemplate>,
  ) => Promise<Buffer>;
}

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

/** Every SAN kind, inside the intermediate's name constraints. */
export const leafSans = {
  dns: ["drone-7.fleet.example"],
  uri: ["spiffe://fleet.example/drone/7"],
  ip: ["10.20.30.40", "fd00::7"],
  email: ["ops@fleet.example"],
} as const;

/**
 * root (self-signed, valid past 2050 so its notAfter is a GeneralizedTime) → intermediate (pathLen 0,
 * name constraints) → leaf with every SAN kind, CRL distribution point and AIA.
 */
export async function buildTestChain(
  algorithm: KeyAlgorithm,
  scheme?: SignatureScheme,
  leafAlgorithm: KeyAlgorithm = algorithm,
  urls: { crl?: string; ocsp?: string } = {},
): Promise<TestChain> {
  const now = Date.now();
  const root = testKey(algorithm, scheme);
  const int = testKey(algorithm, scheme);
  const leaf = testKey(leafAlgorithm);
  const rootDer = await buildCertificate(
    {
      serial: 1n,
      subject: [
        { type: "C", value: "DE" },
        { type: "O", value: "Fleetroot Test" },
        { type: "CN", value: `Root ${algorithm}` },
      ],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 30 * YEAR),
      publicKey: root.signer.publicKey,
      ca: { pathLen: 1 },
    },
    root.signer,
  );
  const intDer = await buildCertificate(
    {
      issuer: { certificate: rootDer },
      serial: Buffer.from("7f00000000000000000000000000000000000001", "hex"),
      subject: [
        { type: "O", value: "Fleetroot Test" },
        { type: "CN", value: `Issuing ${algorithm}` },
      ],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 5 * YEAR),
      publicKey: int.signer.publicKey,
      ca: {
        pathLen: 0,
        nameConstraints: {
          permitted: {
            dns: ["fleet.example"],
            uri: ["fleet.example"],
            ip: ["10.0.0.0/8", "fd00::/8"],
            email: ["fleet.example"],
          },
          excluded: { dns: ["forbidden.fleet.example"] },
        },
      },
      policies: [{ oid: "1.3.6.1.4.1.99999.1", cps: "https://fleet.example/cps" }],
    },
    root.signer,
  );
  const template = createIssuanceTemplate(
    {
      certificate: intDer,
      crlUrls: [urls.crl ?? "http://127.0.0.1:8200/v1/pki/crl"],
      ocspUrls: [urls.ocsp ?? "http://127.0.0.1:8200/v1/pki/ocsp"],
      caIssuersUrls: ["http://127.0.0.1:8200/v1/pki/ca"],
    },
    int.signer,
  );
  const issue: TestChain["issue"] = (tpl) =>
    template.issue({ notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR), ...tpl });
  const leafDer = await issue({
    serial: Buffer.from("00c0ffee", "hex"),
    subject: [{ type: "CN", value: "drone-7" }],
    publicKey: leaf.signer.publicKey,
    extKeyUsage: ["clientAuth", "serverAuth"],
    san: leafSans,
  });
  return {
    root: { der: rootDer, key: root },
    int: { der: intDer, key: int },
    leaf: { der: leafDer, key: leaf },
    issue,
  };
}
