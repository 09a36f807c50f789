import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { readConfig, readPair } from "../src/agent/files.js";
import { renewOnce, runAgent } from "../src/agent/run.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";

describe("renewal over mutual TLS, decommissioning, CRL and OCSP", () => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet({ tls: true });
    await f.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
    await f.api("POST", "fleet/provisioners/lenient", {
      type: "join-token",
      role: "device",
      renew_grace: "2h",
    });
  });
  afterAll(async () => f?.close());

  async function enrolled(id: string, provisioner = "factory"): Promise<string> {
    const tk = await f.api("POST", `fleet/provisioners/${provisioner}/tokens`, { device_id: id });
    const dir = mkdtempSync(join(tmpdir(), "fr-agent-"));
    await enrollDevice({
      server: f.url,
      caCert: f.tlsCa,
      provisioner,
      out: dir,
      proof: { type: "token", token: (tk.data as { token: string }).token },
    });
    return dir;
  }

  it("renews before expiry with the same key, then with a new key (rekey)", async () => {
    const dir = await enrolled("r-1");
    const before = await readPair(dir);
    f.clock.advance(30 * 60_000);
    const same = await renewOnce(dir, await readConfig(dir));
    const after = await readPair(dir);
    expect(same.serial).not.toBe(before.state.serial);
    expect(after.keyPem).toBe(before.keyPem);
    const rekeyed = await renewOnce(dir, { ...(await readConfig(dir)), rekey: "ecdsa-p256" });
    const third = await readPair(dir);
    expect(third.keyPem).not.toBe(before.keyPem);
    expect(new X509Certificate(third.certPem).serialNumber.toLowerCase()).toContain(
      rekeyed.serial.replace(/^0+/, ""),
    );
    const dev = (await f.api("GET", "fleet/devices/r-1")).data as {
      certificates: { current: boolean }[];
      last_seen: string;
    };
    expect(dev.certificates.length).toBe(3);
    expect(dev.certificates.filter((c) => c.current).length).toBe(1);
    expect(Date.parse(dev.last_seen)).toBe(f.clock.now().getTime());
  });

  it("refuses renewal with a replaced certificate, after expiry (grace off), and allows it within a grace window", async () => {
    const dir = await enrolled("r-2");
    f.clock.advance(61 * 60_000); // the role's 1h TTL has passed
    await expect(renewOnce(dir, await readConfig(dir))).rejects.toMatchObject({
      status: 403,
      code: "FR_RENEW_DENIED",
    });
    const lenient = await enrolled("r-3", "lenient");
    f.clock.advance(61 * 60_000);
    await expect(renewOnce(lenient, await readConfig(lenient))).resolves.toMatchObject({ deviceId: "r-3" });
  });

  it("refuses renewal with a revoked certificate", async () => {
    const dir = await enrolled("r-4");
    const serial = (await readPair(dir)).state.serial;
    const rev = await f.api("POST", "pki/revoke", { serial_number: serial });
    expect(rev.status, JSON.stringify(rev)).toBe(200);
    await expect(renewOnce(dir, await readConfig(dir))).rejects.toMatchObject({
      status: 403,
      code: "FR_RENEW_DENIED",
    });
  });

  it("the agent renews by itself at two thirds of the lifetime when time moves forward", async () => {
    const dir = await enrolled("r-5");
    const first = (await readPair(dir)).state.serial;
    let done = false;
    const run = runAgent({
      out: dir,
      clock: f.clock,
      once: true,
      sleep: () => new Promise((r) => setTimeout(r, 10)),
    }).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(done).toBe(false); // not due yet
    f.clock.advance(44 * 60_000); // past 2/3 of 1h (+5% jitter at most)
    await run;
    expect((await readPair(dir)).state.serial).not.toBe(first);
  });

  it("decommission revokes every certificate: openssl verify -crl_check and openssl ocsp say revoked; renewal refused", async () => {
    const dir = await enrolled("r-6");
    await renewOnce(dir, await readConfig(dir)); // two certificates now
    const pair = await readPair(dir);
    const d = await f.api("POST", "fleet/devices/r-6/decommission");
    expect(d.status, JSON.stringify(d)).toBe(200);
    expect((d.data as { revoked_serials: string[] }).revoked_serials.length).toBe(2);
    await expect(renewOnce(dir, await readConfig(dir))).rejects.toMatchObject({
      status: 403,
      code: "FR_RENEW_DENIED",
    });

    const work = mkdtempSync(join(tmpdir(), "fr-ossl-"));
    const leaf = join(work, "leaf.pem");
    const ca = join(work, "ca.pem");
    writeFileSync(leaf, pair.certPem);
    writeFileSync(ca, pair.chainPem);
    const crl = await f.t.call("GET", "pki/crl/pem");
    const delta = await f.t.call("GET", "pki/crl/delta/pem");
    writeFileSync(join(work, "crl.pem"), crl.body);
    writeFileSync(join(work, "delta.pem"), delta.body);
    const verify = spawnSync(
      "openssl",
      [
        "verify",
        "-crl_check",
        "-use_deltas",
        "-CAfile",
        ca,
        "-CRLfile",
        join(work, "crl.pem"),
        "-CRLfile",
        join(work, "delta.pem"),
        leaf,
      ],
      { encoding: "utf8" },
    );
    expect(verify.status).not.toBe(0);
    expect(verify.stdout + verify.stderr).toMatch(/certificate revoked/);

    const req = join(work, "req.der");
    execFileSync("openssl", ["ocsp", "-issuer", ca, "-cert", leaf, "-no_nonce", "-reqout", req], {
      stdio: "ignore",
    });
    const { readFileSync } = await import("node:fs");
    const resp = await f.t.server.app.inject({
      method: "POST",
      url: "/v1/pki/ocsp",
      headers: { "content-type": "application/ocsp-request" },
      payload: readFileSync(req),
    });
    writeFileSync(join(work, "resp.der"), resp.rawPayload);
    const ocsp = spawnSync(
      "openssl",
      [
        "ocsp",
        "-respin",
        join(work, "resp.der"),
        "-issuer",
        ca,
        "-cert",
        leaf,
        "-CAfile",
        ca,
        "-no_nonce",
        // earlier tests moved the server clock hours ahead of real time
        "-validity_period",
        "86400",
      ],
      { encoding: "utf8" },
    );
    expect(ocsp.stdout).toMatch(/leaf\.pem: revoked/);
    expect(ocsp.stdout + ocsp.stderr).toMatch(/Response verify OK/);
  });

  it("a suspended device cannot renew; resumed, it can", async () => {
    const dir = await enrolled("r-7");
    expect((await f.api("POST", "fleet/devices/r-7/suspend")).status).toBe(200);
    await expect(renewOnce(dir, await readConfig(dir))).rejects.toMatchObject({
      status: 403,
      code: "FR_RENEW_DENIED",
    });
    expect((await f.api("POST", "fleet/devices/r-7/resume")).status).toBe(200);
    await expect(renewOnce(dir, await readConfig(dir))).resolves.toMatchObject({ deviceId: "r-7" });
  });

  it("renewal without a client certificate is refused", async () => {
    const r = await f.t.call("POST", "fleet/renew", { csr: "x" });
    expect(r.statusCode).toBe(403);
    expect(r.json().code).toBe("FR_RENEW_DENIED");
  });
});
