import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { buildDeviceCsr, generateSoftwareKey } from "../src/agent/enroll-crypto.js";
import { fromPem } from "../src/crypto/index.js";
import { popMessage } from "../src/enroll/index.js";
import { readPair } from "../src/agent/files.js";
import { createKeyManager } from "../src/keys/index.js";
import { type Fleet, startFleet, writeTemp } from "./enroll-fixture.js";
import { softHsmToken } from "./helpers/softhsm.js";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const subtle = webcrypto.subtle;
const DAY = 86_400_000;

type Keys = CryptoKeyPair;
const newKeys = () => subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<Keys>;

async function caCert(name: string, keys: Keys, extra: x509.Extension[] = []) {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 2, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...extra,
    ],
  });
}

async function issue(
  issuer: x509.X509Certificate,
  issuerKey: CryptoKey,
  subject: string,
  publicKey: CryptoKey,
  o: {
    serial: string;
    ca?: boolean;
    usage?: number;
    notAfter?: Date;
    san?: string[];
    extra?: x509.Extension[];
  },
) {
  return x509.X509CertificateGenerator.create({
    serialNumber: o.serial,
    issuer: issuer.subject,
    subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 365 * DAY),
    publicKey,
    signingKey: issuerKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(!!o.ca, o.ca ? 0 : undefined, true),
      new x509.KeyUsagesExtension(
        o.usage ?? (o.ca ? x509.KeyUsageFlags.keyCertSign : x509.KeyUsageFlags.digitalSignature),
        true,
      ),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ...(o.san
        ? [new x509.SubjectAlternativeNameExtension(o.san.map((v) => ({ type: "dns" as const, value: v })))]
        : []),
      ...(o.extra ?? []),
    ],
  });
}

describe("x509 provisioner (IDevID → LDevID), end to end through the agent, IDevID key in SoftHSM2", () => {
  let f: Fleet;
  let idevKeyUri = "";
  let idevPublic: CryptoKey;
  let mfrKeys: Keys;
  let mfr: x509.X509Certificate;
  let inter: x509.X509Certificate;
  let interKeys: Keys;
  const pems = (...c: x509.X509Certificate[]) => c.map((x) => x.toString("pem")).join("\n");
  const out = () => mkdtempSync(join(tmpdir(), "fr-agent-"));

  beforeAll(async () => {
    const tok = await softHsmToken("fr-idevid");
    idevKeyUri = tok.uri("idevid");
    const km = createKeyManager();
    const signer = await km.generate(idevKeyUri, "ecdsa-p256");
    idevPublic = await subtle.importKey("spki", signer.publicKey, alg, true, ["verify"]);
    await km.close();

    mfrKeys = await newKeys();
    mfr = await caCert("CN=Acme Robotics Device CA,O=Acme", mfrKeys);
    interKeys = await newKeys();
    const nc = new NameConstraints({
      permittedSubtrees: new GeneralSubtrees([
        new GeneralSubtree({ base: new GeneralName({ dNSName: "devices.acme.example" }) }),
      ]),
    });
    inter = await issue(mfr, mfrKeys.privateKey, "CN=Acme Line 3,O=Acme", interKeys.publicKey, {
      serial: "02",
      ca: true,
      extra: [new x509.Extension("2.5.29.30", true, AsnConvert.serialize(nc))],
    });

    f = await startFleet();
    const m = await f.api("POST", "fleet/manufacturers/acme", { certificate: mfr.toString("pem") });
    expect(m.status, JSON.stringify(m)).toBe(200);
    const p = await f.api("POST", "fleet/provisioners/idevid", {
      type: "x509",
      role: "device",
      manufacturers: ["acme"],
      device_id_from: "subject.serialNumber",
      device_id_prefix: "acme-",
    });
    expect(p.status, JSON.stringify(p)).toBe(200);
  });
  afterAll(async () => f?.close());

  const enroll = (chainPem: string, keyUri = idevKeyUri) =>
    enrollDevice({
      server: f.url,
      provisioner: "idevid",
      out: out(),
      proof: { type: "idevid", certFile: writeTemp(f.dir, `chain-${Math.random()}.pem`, chainPem), keyUri },
    });

  it("enrolls with a valid chain and proof of possession; the device id comes from the subject serialNumber", async () => {
    const leaf = await issue(inter, interKeys.privateKey, "CN=arm-1,2.5.4.5=SN1001", idevPublic, {
      serial: "1001",
      san: ["arm-1.devices.acme.example"],
    });
    const dir = out();
    const r = await enrollDevice({
      server: f.url,
      provisioner: "idevid",
      out: dir,
      proof: { type: "idevid", certFile: writeTemp(f.dir, "ok.pem", pems(leaf, inter)), keyUri: idevKeyUri },
    });
    expect(r.deviceId).toBe("acme-SN1001");
    expect((await readPair(dir)).state.deviceId).toBe("acme-SN1001");
    const dev = (await f.api("GET", "fleet/devices/acme-SN1001")).data as Record<string, unknown>;
    expect(dev.enrollment_method).toBe("x509");
  });

  it("refuses a chain from an unregistered manufacturer", async () => {
    const otherKeys = await newKeys();
    const other = await caCert("CN=Rogue CA", otherKeys);
    const leaf = await issue(other, otherKeys.privateKey, "CN=x,2.5.4.5=SN2", idevPublic, { serial: "2002" });
    await expect(enroll(pems(leaf))).rejects.toMatchObject({ status: 403, code: "FR_ENROLL_CHAIN" });
  });

  it("refuses an expired IDevID certificate", async () => {
    const leaf = await issue(inter, interKeys.privateKey, "CN=x,2.5.4.5=SN3", idevPublic, {
      serial: "2003",
      notAfter: new Date(Date.now() - 3600_000),
    });
    await expect(enroll(pems(leaf, inter))).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_CHAIN",
      message: expect.stringMatching(/expired/),
    });
  });

  it("refuses an IDevID whose key usage does not allow signatures", async () => {
    const leaf = await issue(inter, interKeys.privateKey, "CN=x,2.5.4.5=SN4", idevPublic, {
      serial: "2004",
      usage: x509.KeyUsageFlags.keyEncipherment,
    });
    await expect(enroll(pems(leaf, inter))).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_CHAIN",
      message: expect.stringMatching(/keyUsage/),
    });
  });

  it("refuses a SAN outside the intermediate's name constraints", async () => {
    const leaf = await issue(inter, interKeys.privateKey, "CN=x,2.5.4.5=SN5", idevPublic, {
      serial: "2005",
      san: ["evil.example"],
    });
    await expect(enroll(pems(leaf, inter))).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_CHAIN",
      message: expect.stringMatching(/permitted/),
    });
  });

  it("refuses without proof of possession (the proof is made with another key)", async () => {
    const leaf = await issue(inter, interKeys.privateKey, "CN=x,2.5.4.5=SN6", idevPublic, { serial: "2006" });
    const tok = await softHsmToken("fr-idevid");
    const km = createKeyManager();
    await km.generate(tok.uri("wrong"), "ecdsa-p256");
    await km.close();
    await expect(enroll(pems(leaf, inter), tok.uri("wrong"))).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_DENIED",
    });
    const nonce = ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
    const noSig = await f.t.call("POST", "fleet/enroll", {
      provisioner: "idevid",
      csr: "-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----",
      nonce,
      chain: pems(leaf, inter),
    });
    expect(noSig.statusCode).toBe(400); // a malformed CSR is refused before any proof is looked at
  });

  it("refuses a device the manufacturer revoked (manufacturer CRL)", async () => {
    const leaf = await issue(mfr, mfrKeys.privateKey, "CN=x,2.5.4.5=SN7", idevPublic, { serial: "2007" });
    const crl = await x509.X509CrlGenerator.create({
      issuer: mfr.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + DAY),
      entries: [{ serialNumber: "2007", revocationDate: new Date(Date.now() - 60_000) }],
      signingKey: mfrKeys.privateKey,
      signingAlgorithm: alg,
    });
    const crlPem = `-----BEGIN X509 CRL-----\n${Buffer.from(crl.rawData).toString("base64")}\n-----END X509 CRL-----\n`;
    const m = await f.api("POST", "fleet/manufacturers/acme", {
      certificate: mfr.toString("pem"),
      crl: crlPem,
    });
    expect(m.status, JSON.stringify(m)).toBe(200);
    await expect(enroll(pems(leaf))).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_CHAIN",
      message: expect.stringMatching(/revoked/),
    });
  });

  it("a bad manufacturer upload is the operator's FR_VALIDATION, not a device's FR_ENROLL_MALFORMED", async () => {
    for (const body of [
      { certificate: "x" },
      { certificate: "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n" },
      {
        certificate: mfr.toString("pem"),
        crl: "-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n",
      },
    ]) {
      const m = await f.api("POST", "fleet/manufacturers/other", body);
      expect(m, JSON.stringify(body)).toMatchObject({ status: 400, code: "FR_VALIDATION" });
      expect(String((m.errors as string[])[0])).not.toMatch(/enrollment proof|chain/);
    }
  });

  it("refuses an IDevID key outside the accepted set as such, not as a proof that does not verify (RSA-1024 was 403 'does not verify')", async () => {
    const rsaAlg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const weak = (await subtle.generateKey(
      { ...rsaAlg, modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) },
      true,
      ["sign", "verify"],
    )) as Keys;
    const leaf = await issue(inter, interKeys.privateKey, "CN=x,2.5.4.5=SN8", weak.publicKey, {
      serial: "2008",
    });
    const csr = await buildDeviceCsr(generateSoftwareKey("ecdsa-p256").signer);
    const nonce = ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
    const msg = popMessage(Buffer.from(nonce, "base64url"), fromPem(csr, "CERTIFICATE REQUEST").der);
    const sig = Buffer.from(await subtle.sign(rsaAlg, weak.privateKey, msg)).toString("base64");
    const r = await f.api("POST", "fleet/enroll", {
      provisioner: "idevid",
      csr,
      nonce,
      chain: pems(leaf, inter),
      signature: sig,
      signature_scheme: "rsa-pkcs1-sha256",
    });
    expect(r).toMatchObject({
      status: 403,
      code: "FR_ENROLL_DENIED",
      errors: [expect.stringMatching(/IDevID certificate's key is an RSA-1024 key, which is not accepted/)],
    });
  });

  it("refuses to delete a manufacturer a provisioner names, naming the provisioners (was 204, then every enrollment 403)", async () => {
    const x1 = await f.api("POST", "fleet/provisioners/x1", {
      type: "x509",
      role: "device",
      manufacturers: ["acme"],
    });
    expect(x1.status, JSON.stringify(x1)).toBe(200);
    const r = await f.api("DELETE", "fleet/manufacturers/acme");
    expect(r).toMatchObject({
      status: 400,
      code: "FR_CONFLICT",
      errors: [expect.stringMatching(/manufacturer "acme" is used by provisioners "idevid", "x1"/)],
    });
    expect((await f.api("GET", "fleet/manufacturers/acme")).status).toBe(200);
    // Once no provisioner names it, it can go.
    const spare = await f.api("POST", "fleet/manufacturers/spare", { certificate: mfr.toString("pem") });
    expect(spare.status).toBe(200);
    expect(
      (
        await f.api("POST", "fleet/provisioners/x1", {
          type: "x509",
          role: "device",
          manufacturers: ["spare"],
        })
      ).status,
    ).toBe(200);
    expect((await f.api("DELETE", "fleet/provisioners/x1")).status).toBe(204);
    expect((await f.api("DELETE", "fleet/manufacturers/spare")).status).toBe(204);
    expect((await f.api("GET", "fleet/manufacturers/spare")).status).toBe(404);
  });

  it("refuses further enrollment of a decommissioned device", async () => {
    expect((await f.api("POST", "fleet/devices/acme-SN1001/decommission")).status).toBe(200);
    const leaf = await issue(inter, interKeys.privateKey, "CN=arm-1,2.5.4.5=SN1001", idevPublic, {
      serial: "1101",
    });
    await expect(enroll(pems(leaf, inter))).rejects.toMatchObject({ status: 400, code: "FR_DEVICE_STATE" });
  });
});
