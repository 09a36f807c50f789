import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "./helpers/stores.js";
import {
  type PkiServer,
  opensslCsr,
  run,
  setupHierarchy,
  startPkiServer,
  tempDir,
  write,
} from "./helpers/pki.js";

describeEachStore("pki API: issuers, roles, issuance, storage, revocation", (db) => {
  let s: PkiServer;
  const dir = tempDir();
  let h: Awaited<ReturnType<typeof setupHierarchy>>;
  const certCount = async () =>
    (
      await s.t.server.core.store.db
        .selectFrom("pki_cert" as never)
        .selectAll()
        .execute()
    ).length;

  beforeAll(async () => {
    s = await startPkiServer(db.url());
    h = await setupHierarchy(s);
  });
  afterAll(async () => {
    await s?.t.close();
  });

  it("serves the default issuer and chain, lists issuers, keeps one default", async () => {
    const der = await s.t.call("GET", "pki/ca");
    expect(der.statusCode).toBe(200);
    expect(der.headers["content-type"]).toContain("application/pkix-cert");
    const ca = new X509Certificate(der.rawPayload);
    expect(ca.subject).toContain("CN=Fleet Test Issuing CA");
    expect(ca.ca).toBe(true);
    const chain = await s.t.call("GET", "pki/ca_chain");
    expect(chain.body.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const list = await s.call("LIST", "pki/issuers");
    const info = list.json().data.key_info as Record<string, { is_default: boolean }>;
    expect(Object.values(info).filter((i) => i.is_default)).toHaveLength(1);
    expect(info[h.intermediateId]?.is_default).toBe(true);
    expect((await s.call("GET", "pki/config/issuers")).json().data.default).toBe(h.intermediateId);
  });

  it("signs a CSR under a role: stored, listed, fetched; serials random, positive, >= 64 bits", async () => {
    const before = await certCount();
    const c = opensslCsr(dir, "dev1", {
      subj: "/CN=drone1.fleet.example/O=Ignored Org",
      addext: ["subjectAltName=DNS:drone1.fleet.example,URI:spiffe://fleet.example/drone/1"],
    });
    const r = await s.call("POST", "pki/sign/device", { csr: c.csr, ttl: "24h" });
    expect(r.statusCode, r.body).toBe(200);
    const d = r.json().data;
    expect(d.serial_number).toMatch(/^([0-9a-f]{2}:){8,19}[0-9a-f]{2}$/);
    expect(d.ca_chain).toHaveLength(2);
    const cert = new X509Certificate(d.certificate);
    expect(cert.subject).toBe("CN=drone1.fleet.example"); // the CSR's O is not copied
    expect(cert.subjectAltName).toContain("URI:spiffe://fleet.example/drone/1");
    expect(cert.checkIssued(new X509Certificate(d.issuing_ca))).toBe(true);
    expect(Date.parse(cert.validTo) - s.t.clock.now().getTime()).toBe(24 * 3600 * 1000);
    expect(await certCount()).toBe(before + 1);
    // Serial: at least 64 bits of entropy, positive (top bit clear).
    const serialHex = d.serial_number.replace(/:/g, "");
    expect(serialHex.length).toBeGreaterThanOrEqual(16);
    expect(parseInt(serialHex.slice(0, 2), 16) & 0x80).toBe(0);

    const got = await s.t.call("GET", `pki/cert/${d.serial_number}`);
    expect(got.statusCode).toBe(200);
    expect(got.json().data).toMatchObject({
      role: "device",
      issuer_id: h.intermediateId,
      revocation_time: 0,
    });
    expect(got.json().data.requester).toMatch(/.+/);
    const listed = await s.call("LIST", "pki/certs");
    expect(listed.json().data.keys).toContain(d.serial_number);
  });

  it("issues with a server-generated key returned once; CN pattern /fleet/* and URI SANs", async () => {
    const r = await s.call("POST", "pki/issue/device", {
      common_name: "/fleet/drone7",
      uri_sans: "spiffe://fleet.example/drone/7",
    });
    expect(r.statusCode, r.body).toBe(200);
    const d = r.json().data;
    expect(d.private_key).toContain("BEGIN PRIVATE KEY");
    expect(d.private_key_type).toBe("ec");
    const cert = new X509Certificate(d.certificate);
    expect(cert.subject).toBe("CN=/fleet/drone7");
    const stored = await s.t.call("GET", `pki/cert/${d.serial_number}`);
    expect(stored.body).not.toContain("PRIVATE KEY");
  });

  it("pages through LIST pki/certs with after/limit", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await s.call("POST", "pki/issue/device", { common_name: `n${i}.fleet.example` });
      expect(r.statusCode).toBe(200);
    }
    const all = (await s.call("LIST", "pki/certs")).json().data.keys as string[];
    expect(all.length).toBeGreaterThanOrEqual(5);
    const sorted = [...all].sort();
    expect(all).toEqual(sorted);
    const page1 = (await s.t.call("GET", "pki/certs?list=true&limit=2", undefined, s.token)).json().data.keys;
    expect(page1).toEqual(all.slice(0, 2));
    const page2 = (
      await s.t.call("GET", `pki/certs?list=true&limit=2&after=${page1[1]}`, undefined, s.token)
    ).json().data.keys;
    expect(page2).toEqual(all.slice(2, 4));
  });

  it("revokes idempotently; the revocation is in the delta CRL and OCSP at once, full CRL after rebuild", async () => {
    const r = await s.call("POST", "pki/issue/device", { common_name: "gone.fleet.example" });
    const serial = r.json().data.serial_number as string;
    const full0 = await s.t.call("GET", "pki/crl");
    expect(full0.headers["content-type"]).toContain("application/pkix-crl");

    const rev = await s.call("POST", "pki/revoke", { serial_number: serial, reason: "keyCompromise" });
    expect(rev.statusCode, rev.body).toBe(200);
    expect(rev.json().data.state).toBe("revoked");
    s.t.clock.advance(5000);
    const again = await s.call("POST", "pki/revoke", { serial_number: serial, reason: "superseded" });
    expect(again.json().data.revocation_time).toBe(rev.json().data.revocation_time);
    expect(again.json().data.reason).toBe("keyCompromise");

    const f = write(dir, "delta.crl", (await s.t.call("GET", "pki/crl/delta")).rawPayload);
    const delta = run("openssl", ["crl", "-inform", "DER", "-in", f, "-noout", "-text"]);
    expect(delta.out).toContain("Delta CRL Indicator");
    expect(delta.out).toContain(serial.replace(/:/g, "").toUpperCase());
    expect(delta.out).toContain("Key Compromise");
    // Not yet in the complete CRL (no rebuild per revocation) ...
    const full1 = write(dir, "full1.crl", (await s.t.call("GET", "pki/crl")).rawPayload);
    expect(run("openssl", ["crl", "-inform", "DER", "-in", full1, "-noout", "-text"]).out).not.toContain(
      serial.replace(/:/g, "").toUpperCase(),
    );
    // ... until the scheduled rebuild (rebuild interval 12h by default).
    s.t.clock.advance(13 * 3600 * 1000);
    const full2 = write(dir, "full2.crl", (await s.t.call("GET", "pki/crl")).rawPayload);
    const text = run("openssl", ["crl", "-inform", "DER", "-in", full2, "-noout", "-text"]).out;
    expect(text).toContain(serial.replace(/:/g, "").toUpperCase());
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*\d+/);
    expect(text).toContain("X509v3 Authority Key Identifier");
    expect((await s.t.call("GET", `pki/cert/${serial}`)).json().data.revocation_time).toBeGreaterThan(0);
  });

  it("survives a restart: issuers, roles and certificates are stored", async () => {
    const before = (await s.call("LIST", "pki/certs")).json().data.keys;
    await s.t.restart();
    expect((await s.call("LIST", "pki/certs")).json().data.keys).toEqual(before);
    expect((await s.call("GET", "pki/roles/device")).json().data.allowed_domains).toEqual(["fleet.example"]);
    const r = await s.call("POST", "pki/issue/device", { common_name: "after.fleet.example" });
    expect(r.statusCode, r.body).toBe(200);
  });

  it("unknown serials, roles and issuers are 404s", async () => {
    expect((await s.t.call("GET", "pki/cert/01:02:03")).statusCode).toBe(404);
    const noRole = (await s.call("POST", "pki/issue/nope", { common_name: "a.fleet.example" })).json();
    expect(noRole.code).toBe("FR_PKI_ROLE_NOT_FOUND");
    // The way out is named, for the CLI and the API.
    expect(noRole.errors.join(" ")).toContain("`fleetroot ca role write nope …` (API: POST pki/roles/nope)");
    expect((await s.t.call("GET", "pki/issuer/nope/der")).statusCode).toBe(404);
    expect((await s.call("POST", "pki/revoke", { serial_number: "0a:0b" })).statusCode).toBe(404);
  });
});
