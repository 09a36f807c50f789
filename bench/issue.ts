/**
 * Issuance throughput on one core (`npx tsx bench/issue.ts`): Fleetroot's template path
 * (createIssuanceTemplate + issue, P-256 software signer) next to, in the same run, raw node:crypto
 * P-256 signatures (the ceiling: one signature per certificate) and @peculiar/x509's generator.
 * Also times one CRL with 100,000 entries. Bounded: about 15 s.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { generateKeyPairSync, sign, webcrypto } from "node:crypto";
import type { Signer } from "../src/keys/types.js";
import { keySigner } from "./lib/signer.js";
import {
  buildCertificate,
  buildCrl,
  certificateParts,
  createIssuanceTemplate,
  randomSerial,
} from "../src/crypto/index.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

function p256Signer(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return keySigner(privateKey, publicKey);
}

/** Runs `fn` repeatedly for `seconds` after a short warm-up; returns operations per second. */
async function rate(seconds: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 200; i++) await fn(i);
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) await fn(n++);
  }
  return n / ((performance.now() - start) / 1000);
}

const now = Date.now();
const day = 86_400_000;
const caSigner = p256Signer();
const caDer = await buildCertificate(
  {
    serial: randomSerial(),
    subject: [{ type: "CN", value: "Bench Issuing CA" }],
    notBefore: new Date(now - day),
    notAfter: new Date(now + 365 * day),
    publicKey: caSigner.publicKey,
    ca: { pathLen: 0 },
  },
  caSigner,
);
// Device keys come from CSRs: a pool of public keys stands in for them.
const devicePool = Array.from({ length: 64 }, () => p256Signer().publicKey);

const template = createIssuanceTemplate(
  {
    certificate: caDer,
    crlUrls: ["http://127.0.0.1:8200/v1/pki/crl"],
    ocspUrls: ["http://127.0.0.1:8200/v1/pki/ocsp"],
  },
  caSigner,
);
const fleetroot = await rate(SECONDS, (i) =>
  template.issue({
    serial: randomSerial(),
    subject: [{ type: "CN", value: `drone-${i}` }],
    notBefore: new Date(now),
    notAfter: new Date(now + 30 * day),
    publicKey: devicePool[i % devicePool.length] as Uint8Array,
    extKeyUsage: ["clientAuth"],
    san: { dns: [`drone-${i}.fleet.example`], uri: [`spiffe://fleet.example/drone/${i}`] },
  }),
);

const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const tbsSized = Buffer.alloc(420, 0x5a);
const rawSign = await rate(SECONDS, () => sign("sha256", tbsSized, privateKey));

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const caKeys = await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"]);
const deviceKeys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
const caCert = await x509.X509CertificateGenerator.createSelfSigned({
  serialNumber: "01",
  name: "CN=Bench Issuing CA",
  notBefore: new Date(now - day),
  notAfter: new Date(now + 365 * day),
  keys: caKeys,
  signingAlgorithm: alg,
});
const peculiar = await rate(Math.min(SECONDS, 2), (i) =>
  x509.X509CertificateGenerator.create({
    serialNumber: randomSerial().toString("hex"),
    subject: `CN=drone-${i}`,
    issuer: caCert.subject,
    notBefore: new Date(now),
    notAfter: new Date(now + 30 * day),
    publicKey: deviceKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(["1.3.6.1.5.5.7.3.2"]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: `drone-${i}.fleet.example` },
        { type: "url", value: `spiffe://fleet.example/drone/${i}` },
      ]),
    ],
  }),
);

const caParts = certificateParts(caDer);
const entries = Array.from({ length: 100_000 }, (_, i) => ({
  serial: randomSerial(),
  revokedAt: now - i * 1000,
  ...(i % 4 === 0 ? { reason: "keyCompromise" as const } : {}),
}));
const crlStart = performance.now();
const crl = await buildCrl(
  {
    issuerNameDer: caParts.subject,
    issuerSki: caParts.subjectKeyId ?? Buffer.alloc(20),
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + day),
    crlNumber: 1,
    entries,
  },
  caSigner,
);
const crlMs = performance.now() - crlStart;

const f = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(`issuance, P-256, one core, ${SECONDS}s per measurement`);
console.log(`  fleetroot template path   ${f(fleetroot).padStart(9)} certs/s`);
console.log(`  raw crypto.sign P-256     ${f(rawSign).padStart(9)} signatures/s`);
console.log(`  @peculiar/x509 generator  ${f(peculiar).padStart(9)} certs/s`);
console.log(`  fleetroot / raw sign      ${(fleetroot / rawSign).toFixed(2)}  (share of time spent signing)`);
console.log(`  fleetroot / peculiar      ${(fleetroot / peculiar).toFixed(1)}x`);
console.log(`  target >= 3,000 certs/s   ${fleetroot >= 3000 ? "met" : "NOT met"}`);
console.log(
  `CRL with 100,000 entries: ${crlMs.toFixed(0)} ms including one signature, ${(crl.length / 1e6).toFixed(1)} MB`,
);
