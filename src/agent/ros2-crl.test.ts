import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as px509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { checkRos2Crl } from "./ros2-crl.js";

px509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof px509.cryptoProvider.set>[0]);
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function ca(name: string) {
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await px509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: alg,
    extensions: [new px509.BasicConstraintsExtension(true, undefined, true)],
  });
  const crl = await px509.X509CrlGenerator.create({
    issuer: cert.subject,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + 3600_000),
    entries: [],
    signingKey: keys.privateKey,
    signingAlgorithm: alg,
  });
  return { pem: cert.toString("pem"), crl: crl.toString("pem") };
}

describe("checkRos2Crl", () => {
  it("accepts the identity CA's CRL; names a foreign or unparsable one as a CRL problem, not an S/MIME one", async () => {
    const a = await ca("identity a");
    const b = await ca("identity b");
    await expect(checkRos2Crl(a.crl, a.pem)).resolves.toBeUndefined();
    const foreign = await checkRos2Crl(b.crl, a.pem).catch((e: unknown) => e as Error & { code: string });
    expect(foreign).toMatchObject({ code: "FR_ROS2_CRL" });
    expect((foreign as Error).message).toContain("not signed by the keystore's identity CA");
    expect((foreign as Error).message).not.toContain("S/MIME");
    await expect(checkRos2Crl("not a crl", a.pem)).rejects.toMatchObject({ code: "FR_ROS2_CRL" });
  });
});
