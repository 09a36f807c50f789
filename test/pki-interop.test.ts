import { readFileSync } from "node:fs";
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

/**
 * Everything Fleetroot makes, checked by independent implementations on this machine: OpenSSL 3 (verify
 * -x509_strict, -crl_check_all, crl -verify, the ocsp client over HTTP on loopback) and GnuTLS certtool.
 */
describe("pki interop with openssl and certtool", () => {
  const dir = tempDir();
  let s: PkiServer;
  let url = "";
  let h: Awaited<ReturnType<typeof setupHierarchy>>;
  const f = (name: string) => join(dir, name);

  beforeAll(async () => {
    // The peers check validity against the real time, so the server's clock starts at it.
    s = await startPkiServer(`sqlite:${join(dir, "fr.db")}`, {
      dataDir: dir,
      clock: new ManualClock(Date.now()),
    });
    url = await s.t.server.listen();
    h = await setupHierarchy(s);
    write(dir, "root.pem", h.rootPem);
    write(dir, "inter.pem", h.intermediatePem);
  }, 30_000);
  afterAll(async () => {
    await s?.t.close();
  });

  async function signLeaf(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const c = opensslCsr(dir, name, { subj: `/CN=${name}.fleet.example` });
    const r = await s.call("POST", "pki/sign/device", { csr: c.csr, ...extra });
    expect(r.statusCode, r.body).toBe(200);
    write(dir, `${name}.pem`, r.json().data.certificate);
    return r.json().data.serial_number;
  }

  async function crls(): Promise<string[]> {
    const out: string[] = [];
    for (const id of [h.rootId, h.intermediateId]) {
      const r = await s.t.call("GET", `pki/issuer/${id}/crl/pem`);
      expect(r.statusCode).toBe(200);
      out.push(write(dir, `crl-${id}.pem`, r.body));
    }
    return out;
  }

  const verify = (leaf: string, crlFiles: string[] = []) =>
    run("openssl", [
      "verify",
      "-x509_strict",
      ...(crlFiles.length ? ["-crl_check_all", ...crlFiles.flatMap((c) => ["-CRLfile", c])] : []),
      "-CAfile",
      f("root.pem"),
      "-untrusted",
      f("inter.pem"),
      f(leaf),
    ]);

  it("root, intermediate and leaf pass openssl verify -x509_strict and certtool --verify-chain", async () => {
    await signLeaf("leaf1");
    expect(run("openssl", ["verify", "-x509_strict", "-CAfile", f("root.pem"), f("root.pem")]).out).toContain(
      ": OK",
    );
    expect(
      run("openssl", ["verify", "-x509_strict", "-CAfile", f("root.pem"), f("inter.pem")]).out,
    ).toContain(": OK");
    const v = verify("leaf1.pem");
    expect(v.out, v.out).toContain("leaf1.pem: OK");
    const bundle = write(
      dir,
      "bundle1.pem",
      readFileSync(f("leaf1.pem"), "utf8") + h.intermediatePem + h.rootPem,
    );
    const ct = run("certtool", ["--verify-chain", "--infile", bundle]);
    expect(ct.code, ct.out).toBe(0);
    expect(ct.out).toContain("Chain verification output: Verified");
  });

  it("CRLs verify under their issuers and pass -crl_check_all; a revoked leaf fails exactly for revocation", async () => {
    const serial = await signLeaf("leaf2");
    const [rootCrl, interCrl] = await crls();
    for (const [crl, ca] of [
      [rootCrl, "root.pem"],
      [interCrl, "inter.pem"],
    ] as const) {
      const c = run("openssl", ["crl", "-in", crl as string, "-CAfile", f(ca), "-noout"]);
      expect(c.out, c.out).toContain("verify OK");
    }
    expect(verify("leaf2.pem", [rootCrl as string, interCrl as string]).out).toContain("leaf2.pem: OK");

    const rev = await s.call("POST", "pki/revoke", { serial_number: serial, reason: "cessationOfOperation" });
    expect(rev.statusCode).toBe(200);
    expect((await s.call("GET", "pki/crl/rotate")).statusCode).toBe(200);
    const after = await crls();
    const v = verify("leaf2.pem", after);
    expect(v.code).not.toBe(0);
    expect(v.out).toContain("error 23 at 0 depth lookup: certificate revoked");
    expect(v.out.match(/error \d+/g)).toEqual(["error 23"]);
    // The other leaf is still fine with the same CRLs.
    expect(verify("leaf1.pem", after).out).toContain("leaf1.pem: OK");
    // GnuTLS agrees.
    const ct = run("certtool", [
      "--verify",
      "--load-ca-certificate",
      f("inter.pem"),
      "--load-crl",
      after[1] as string,
      "--infile",
      f("leaf2.pem"),
    ]);
    expect(ct.out).toMatch(/revoked/i);
  });

  it("openssl ocsp over HTTP: good, then revoked with time and reason; unknown; response signature verified", async () => {
    const serial = await signLeaf("leaf3");
    const ocsp = (cert: string[]) =>
      runAsync("openssl", [
        "ocsp",
        "-issuer",
        f("inter.pem"),
        ...cert,
        "-url",
        `${url}/v1/pki/ocsp`,
        "-CAfile",
        f("root.pem"),
        "-verify_other",
        f("inter.pem"),
      ]);
    const good = await ocsp(["-cert", f("leaf3.pem")]);
    expect(good.out, good.out).toContain("Response verify OK");
    expect(good.out).toContain("leaf3.pem: good");

    await s.call("POST", "pki/revoke", { serial_number: serial, reason: "keyCompromise" });
    const revoked = await ocsp(["-cert", f("leaf3.pem")]);
    expect(revoked.out, revoked.out).toContain("Response verify OK");
    expect(revoked.out).toContain("leaf3.pem: revoked");
    expect(revoked.out).toContain("Reason: keyCompromise");
    expect(revoked.out).toMatch(/Revocation Time: .*2026/);

    const unknown = await ocsp(["-serial", "0x1234567890abcdef"]);
    expect(unknown.out).toContain("Response verify OK");
    expect(unknown.out).toContain(": unknown");
  });

  it("GET /v1/pki/ocsp/<base64> without nonce is served from the cache until revoked", async () => {
    const serial = await signLeaf("leaf4");
    const req = f("req4.der");
    run("openssl", ["ocsp", "-issuer", f("inter.pem"), "-cert", f("leaf4.pem"), "-no_nonce", "-reqout", req]);
    const b64 = encodeURIComponent(readFileSync(req).toString("base64"));
    const get = async () => {
      const r = await fetch(`${url}/v1/pki/ocsp/${b64}`);
      expect(r.headers.get("content-type")).toContain("application/ocsp-response");
      return Buffer.from(await r.arrayBuffer());
    };
    const a = await get();
    s.t.clock.advance(1000);
    const b = await get();
    expect(b.equals(a)).toBe(true); // reused, not re-signed
    const text = (resp: Buffer) =>
      run("openssl", [
        "ocsp",
        "-respin",
        write(dir, "resp4.der", resp),
        "-issuer",
        f("inter.pem"),
        "-cert",
        f("leaf4.pem"),
        "-CAfile",
        f("root.pem"),
        "-verify_other",
        f("inter.pem"),
      ]).out;
    expect(text(a)).toContain("leaf4.pem: good");
    await s.call("POST", "pki/revoke", { serial_number: serial });
    const c = await get();
    expect(c.equals(a)).toBe(false);
    expect(text(c)).toContain("leaf4.pem: revoked");
  });

  it("a delegated OCSP signing certificate signs responses; openssl verifies it", async () => {
    const r = await s.call("POST", `pki/issuer/${h.intermediateId}/ocsp-signer`, {});
    expect(r.statusCode, r.body).toBe(200);
    write(dir, "ocsp-signer.pem", r.json().data.certificate);
    expect(run("openssl", ["x509", "-in", f("ocsp-signer.pem"), "-noout", "-text"]).out).toContain(
      "OCSP Signing",
    );
    await signLeaf("leaf5");
    const out = (
      await runAsync("openssl", [
        "ocsp",
        "-issuer",
        f("inter.pem"),
        "-cert",
        f("leaf5.pem"),
        "-url",
        `${url}/v1/pki/ocsp`,
        "-CAfile",
        f("root.pem"),
        "-verify_other",
        f("inter.pem"),
        "-resp_text",
      ])
    ).out;
    expect(out, out).toContain("Response verify OK");
    expect(out).toContain("leaf5.pem: good");
    expect(out).toContain("OCSP responder");
  });

  it("expired certificates leave the complete CRL", async () => {
    const serial = await signLeaf("leaf6", { ttl: "1h" });
    await s.call("POST", "pki/revoke", { serial_number: serial });
    await s.call("GET", "pki/crl/rotate");
    const hex = serial.replace(/:/g, "").toUpperCase();
    const text = async () =>
      run("openssl", [
        "crl",
        "-inform",
        "DER",
        "-in",
        write(dir, "c6.crl", (await s.t.call("GET", "pki/crl")).rawPayload),
        "-noout",
        "-text",
      ]).out;
    expect(await text()).toContain(hex);
    s.t.clock.advance(13 * 3600 * 1000); // past the leaf's expiry and the rebuild interval
    expect(await text()).not.toContain(hex);
  });
});
