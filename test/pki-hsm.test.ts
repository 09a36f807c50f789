import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/util/clock.js";
import {
  type PkiServer,
  opensslCsr,
  run,
  runAsync,
  setupHierarchy,
  startPkiServer,
  tempDir,
  write,
} from "./helpers/pki.js";
import { softHsmToken } from "./helpers/softhsm.js";

/** CA keys in SoftHSM2 (pkcs11: URIs): the HSM-held intermediate issues, signs CRLs and OCSP responses. */
describe("pki with CA keys in SoftHSM2", () => {
  const dir = tempDir("fr-pki-hsm-");
  const f = (n: string) => join(dir, n);
  let s: PkiServer;
  let url = "";

  beforeAll(async () => {
    // Tokens first: SoftHSM2 reads its token directory once, at the first C_Initialize.
    const token = await softHsmToken("pki-ca");
    s = await startPkiServer(`sqlite:${f("fr.db")}`, {
      dataDir: join(dir, "data"),
      clock: new ManualClock(Date.now()),
    });
    url = await s.t.server.listen();
    const h = await setupHierarchy(s, {
      rootKeyRef: token.uri("fleet-root"),
      intermediateKeyRef: token.uri("fleet-issuing"),
    });
    write(dir, "root.pem", h.rootPem);
    write(dir, "inter.pem", h.intermediatePem);
  }, 60_000);
  afterAll(async () => {
    await s?.t.close();
  });

  it("issues, revokes, and signs the CRL and OCSP responses with the HSM key", async () => {
    const issuers = (await s.call("LIST", "pki/issuers")).json().data.keys as string[];
    expect(issuers).toHaveLength(2);
    const c = opensslCsr(dir, "leaf", { subj: "/CN=hsm.fleet.example" });
    const r = await s.call("POST", "pki/sign/device", { csr: c.csr });
    expect(r.statusCode, r.body).toBe(200);
    write(dir, "leaf.pem", r.json().data.certificate);
    const v = run("openssl", [
      "verify",
      "-x509_strict",
      "-CAfile",
      f("root.pem"),
      "-untrusted",
      f("inter.pem"),
      f("leaf.pem"),
    ]);
    expect(v.out).toContain("leaf.pem: OK");

    const good = await runAsync("openssl", [
      "ocsp",
      "-issuer",
      f("inter.pem"),
      "-cert",
      f("leaf.pem"),
      "-url",
      `${url}/v1/pki/ocsp`,
      "-CAfile",
      f("root.pem"),
      "-verify_other",
      f("inter.pem"),
    ]);
    expect(good.out, good.out).toContain("Response verify OK");
    expect(good.out).toContain("leaf.pem: good");

    await s.call("POST", "pki/revoke", {
      serial_number: r.json().data.serial_number,
      reason: "keyCompromise",
    });
    const revoked = await runAsync("openssl", [
      "ocsp",
      "-issuer",
      f("inter.pem"),
      "-cert",
      f("leaf.pem"),
      "-url",
      `${url}/v1/pki/ocsp`,
      "-CAfile",
      f("root.pem"),
      "-verify_other",
      f("inter.pem"),
    ]);
    expect(revoked.out).toContain("Response verify OK");
    expect(revoked.out).toContain("leaf.pem: revoked");

    await s.call("GET", "pki/crl/rotate");
    const crl = write(dir, "crl.pem", (await s.t.call("GET", "pki/crl/pem")).body);
    expect(run("openssl", ["crl", "-in", crl, "-CAfile", f("inter.pem"), "-noout"]).out).toContain(
      "verify OK",
    );
    const rootCrl = write(dir, "root-crl.pem", (await s.t.call("GET", `pki/issuer/root/crl/pem`)).body);
    const check = run("openssl", [
      "verify",
      "-x509_strict",
      "-crl_check_all",
      "-CRLfile",
      crl,
      "-CRLfile",
      rootCrl,
      "-CAfile",
      f("root.pem"),
      "-untrusted",
      f("inter.pem"),
      f("leaf.pem"),
    ]);
    expect(check.out).toContain("certificate revoked");
  });
});
