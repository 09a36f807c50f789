/**
 * The issuance path reads CSRs with a lean DER pass (csr.ts). This holds what it reads equal to
 * @peculiar/asn1-csr's decoding of the same bytes, for CSRs from openssl (string masks, multi-valued RDNs,
 * UTF-8, e-mail attributes, every key type) and from @peculiar/x509 (every supported name type,
 * critical flags, path lengths, unknown extensions).
 */
import "reflect-metadata";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { webcrypto } from "node:crypto";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicConstraints, ExtendedKeyUsage, Extensions, SubjectAlternativeName } from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { afterAll, describe, expect, it } from "vitest";
import { DerReader } from "./der-reader.js";
import { oid as encodeOid } from "./der.js";
import { ipBytes, ipText } from "./general-name.js";
import { attributeName } from "./name.js";
import { OID } from "./oids.js";
import { parseCsr } from "./csr.js";
import { runPeer, tempDir } from "./test-helpers.js";

const dir = tempDir("fleetroot-csr-lib-");
afterAll(() => dir.remove());

/** What the library decodes from a CSR, in ParsedCsr's terms. */
function libraryView(der: Buffer) {
  const csr = AsnConvert.parse(der, CertificationRequest);
  const attributes = [];
  for (const rdn of csr.certificationRequestInfo.subject)
    for (const atv of rdn)
      attributes.push({ oid: atv.type, type: attributeName(atv.type), value: atv.value.toString() });
  const extensions: { oid: string; critical: boolean; value: Buffer }[] = [];
  for (const attr of csr.certificationRequestInfo.attributes ?? []) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const v of attr.values)
      for (const e of AsnConvert.parse(v, Extensions))
        extensions.push({ oid: e.extnID, critical: e.critical, value: Buffer.from(e.extnValue.buffer) });
  }
  const find = (id: string) => extensions.find((e) => e.oid === id)?.value;
  const san = { dns: [] as string[], uri: [] as string[], ip: [] as string[], email: [] as string[] };
  const sanDer = find(OID.subjectAltName);
  for (const gn of sanDer ? AsnConvert.parse(sanDer, SubjectAlternativeName) : []) {
    if (gn.dNSName !== undefined) san.dns.push(gn.dNSName);
    else if (gn.uniformResourceIdentifier !== undefined) san.uri.push(gn.uniformResourceIdentifier);
    else if (gn.rfc822Name !== undefined) san.email.push(gn.rfc822Name);
    else if (gn.iPAddress !== undefined) san.ip.push(ipText(ipBytes(gn.iPAddress)));
  }
  const bcDer = find(OID.basicConstraints);
  const bc = bcDer ? AsnConvert.parse(bcDer, BasicConstraints) : undefined;
  const ekuDer = find(OID.extKeyUsage);
  return {
    signatureOid: csr.signatureAlgorithm.algorithm,
    signature: Buffer.from(csr.signature),
    publicKey: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)),
    attributes,
    extensions,
    san,
    ca: bc?.cA ? (bc.pathLenConstraint === undefined ? {} : { pathLen: bc.pathLenConstraint }) : undefined,
    extKeyUsage: ekuDer ? [...AsnConvert.parse(ekuDer, ExtendedKeyUsage)] : undefined,
  };
}

function expectSameAsLibrary(pemOrDer: string | Buffer): void {
  const ours = parseCsr(pemOrDer);
  const lib = libraryView(ours.der);
  expect(ours.signatureAlgorithm.oid).toBe(lib.signatureOid);
  expect(ours.signature.equals(lib.signature)).toBe(true);
  expect(ours.publicKey.equals(lib.publicKey)).toBe(true);
  expect(ours.subject.attributes).toEqual(lib.attributes);
  expect(ours.extensions).toEqual(lib.extensions);
  expect(ours.san).toEqual(lib.san);
  expect(ours.requested.ca).toEqual(lib.ca);
  expect(ours.requested.extKeyUsage).toEqual(lib.extKeyUsage);
}

const keyArgs: Record<string, string[]> = {
  p256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
  p384: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
  ed25519: ["-algorithm", "ED25519"],
  rsa: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
};

function opensslCsr(name: string, key: string, mask: string, subj: string, extra: string[]): string {
  const keyFile = join(dir.path, `${key}.key`);
  if (runPeer("openssl", ["genpkey", ...(keyArgs[key] as string[]), "-out", keyFile]).status !== 0)
    throw new Error(`openssl genpkey ${key} failed`);
  const conf = join(dir.path, `${name}.cnf`);
  writeFileSync(conf, `[req]\ndistinguished_name = dn\nstring_mask = ${mask}\nprompt = no\n[dn]\n`);
  const out = join(dir.path, `${name}.csr`);
  const r = runPeer("openssl", [
    "req",
    "-new",
    "-config",
    conf,
    "-key",
    keyFile,
    "-subj",
    subj,
    "-out",
    out,
    ...extra,
  ]);
  if (r.status !== 0) throw new Error(`openssl req ${name}: ${r.stderr}`);
  return readFileSync(out, "utf8");
}

describe("the lean CSR reader agrees with @peculiar/asn1-csr", () => {
  const cases: [string, string, string, string, string[]][] = [
    [
      "p256-default",
      "p256",
      "default",
      "/C=DE/O=Fleet/CN=drone-1",
      ["-addext", "subjectAltName=DNS:a.example,IP:10.0.0.1"],
    ],
    [
      "p384-utf8",
      "p384",
      "utf8only",
      "/CN=Drohne Über Köln/O=Flotte",
      ["-utf8", "-sha384", "-addext", "subjectAltName=IP:fd00::1:0:0:9,URI:urn:x:y"],
    ],
    [
      "ed25519-nombstr",
      "ed25519",
      "nombstr",
      "/CN=edge/emailAddress=ops@fleet.example/DC=fleet/DC=example",
      [],
    ],
    [
      "rsa-pkix-bmp",
      "rsa",
      "pkix",
      "/CN=Ünïcödé-ñame/OU=unit one/L=Zürich",
      [
        "-utf8",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:3",
        "-addext",
        "extendedKeyUsage=serverAuth,clientAuth,1.3.6.1.4.1.99999.42.7",
      ],
    ],
    [
      "p256-multivalue",
      "p256",
      "utf8only",
      "/CN=a+OU=b+O=c/serialNumber=0042/title=robot",
      [
        "-multivalue-rdn",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-addext",
        "1.3.6.1.4.1.99999.1=ASN1:UTF8String:custom",
      ],
    ],
    [
      "p256-ca-false",
      "p256",
      "default",
      "/CN=leaf",
      [
        "-addext",
        "basicConstraints=CA:FALSE",
        "-addext",
        "subjectAltName=email:a@b.example,DNS:*.fleet.example",
      ],
    ],
  ];
  it.each(cases)("openssl %s", (name, key, mask, subj, extra) => {
    expectSameAsLibrary(opensslCsr(name, key, mask, subj, extra));
  });

  it("@peculiar/x509 CSRs with every supported name type, flags and unknown extensions", async () => {
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    for (let i = 0; i < 6; i++) {
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: `CN=device-${i}, O=Fleet ${i}, C=DE`,
        keys,
        signingAlgorithm: alg,
        extensions: [
          new x509.SubjectAlternativeNameExtension(
            [
              { type: "dns", value: `d${i}.fleet.example` },
              { type: "ip", value: i % 2 ? "192.168.7.9" : "2001:db8::7:9" },
              { type: "url", value: `spiffe://fleet.example/d/${i}` },
              { type: "email", value: `d${i}@fleet.example` },
            ],
            i % 3 === 0,
          ),
          new x509.BasicConstraintsExtension(i % 2 === 0, i % 2 === 0 ? i : undefined, true),
          new x509.ExtendedKeyUsageExtension(["1.3.6.1.5.5.7.3.2", `1.3.6.1.4.1.${99999 + i}.1`], i === 5),
          new x509.Extension(`1.3.6.1.4.1.99999.${i}.3`, i === 4, new Uint8Array([0x05, 0x00])),
        ],
      });
      expectSameAsLibrary(Buffer.from(csr.rawData));
    }
  });
});

describe("object identifiers", () => {
  it("decode as the encoder wrote them, up to and past 2^53 arcs", () => {
    const limits = { maxBytes: 200, maxDepth: 2, code: "FR_CSR_INVALID" as const, what: "oid" };
    for (const id of [
      "1.2.840.10045.4.3.2",
      "2.5.29.17",
      "0.9.2342.19200300.100.1.25",
      "2.999.3",
      "1.3.6.1.4.1.4294967295.1",
      "2.25.329800735698586629295641978511506172918",
      "1.2.9007199254740993.70368744177664.70368744177663",
    ]) {
      const r = new DerReader(encodeOid(id), limits);
      expect(r.oid(r.root())).toBe(id);
    }
  });
});
