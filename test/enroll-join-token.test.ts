import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { ServerRefusal } from "../src/agent/enroll-http.js";
import { readPair } from "../src/agent/files.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";

describe("join-token provisioner, end to end through the agent", () => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet();
    const p = await f.api("POST", "fleet/provisioners/factory", {
      type: "join-token",
      role: "device",
      token_ttl: "10m",
    });
    expect(p.status, JSON.stringify(p)).toBe(200);
  });
  afterAll(async () => f?.close());

  const token = async (body: Record<string, unknown> = {}) => {
    const r = await f.api("POST", "fleet/provisioners/factory/tokens", body);
    expect(r.status, JSON.stringify(r)).toBe(200);
    return (r.data as { token: string }).token;
  };
  const out = () => mkdtempSync(join(tmpdir(), "fr-agent-"));

  it("refuses a provisioner bound to a PKI role that does not exist, and stores nothing", async () => {
    const r = await f.api("POST", "fleet/provisioners/typo", { type: "join-token", role: "devcie" });
    expect([r.status, r.code]).toEqual([400, "FR_VALIDATION"]);
    expect(JSON.stringify(r.errors)).toContain('no PKI role \\"devcie\\"');
    expect((await f.api("GET", "fleet/provisioners/typo")).status).toBe(404);
  });

  it("enrolls a device bound to the token, with a certificate from the PKI", async () => {
    const dir = out();
    const r = await enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: dir,
      proof: { type: "token", token: await token({ device_id: "drone-7", labels: { site: "lab" } }) },
    });
    expect(r.deviceId).toBe("drone-7");
    const pair = await readPair(dir);
    const cert = new X509Certificate(pair.certPem);
    expect(cert.subject).toBe("CN=drone-7");
    expect(cert.subjectAltName).toContain("urn:fleetroot:device:drone-7");
    const ca = new X509Certificate(pair.chainPem);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(readFileSync(join(dir, "current", "key.pem"), "utf8")).toContain("PRIVATE KEY");
    const dev = await f.api("GET", "fleet/devices/drone-7");
    const data = dev.data as Record<string, unknown>;
    expect(data.status).toBe("active");
    expect(data.enrollment_method).toBe("join-token");
    expect(data.labels).toEqual({ site: "lab" });
    expect((data.certificates as unknown[]).length).toBe(1);
  });

  it("refuses a token bound to one device used for another, and leaves it unspent (robot-21 was enrolled as robot-20)", async () => {
    const tk = await token({ device_id: "robot-20" });
    const other = enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: out(),
      deviceId: "robot-21",
      proof: { type: "token", token: tk },
    });
    await expect(other).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_DENIED",
      message: expect.stringMatching(/bound to device "robot-20", not "robot-21"/),
    });
    expect((await f.api("GET", "fleet/devices/robot-21")).status).toBe(404);
    const pending = await f.api("GET", "fleet/devices/robot-20");
    expect((pending.data as { status: string; certificates: unknown[] }).status).toBe("pending");
    expect((pending.data as { certificates: unknown[] }).certificates).toEqual([]);
    // Unspent: the same token still enrolls the device it is bound to (naming it or not).
    const r = await enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: out(),
      deviceId: "robot-20",
      proof: { type: "token", token: tk },
    });
    expect(r.deviceId).toBe("robot-20");
  });

  it("refuses a reused token and an expired token", async () => {
    const tk = await token();
    await enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: out(),
      proof: { type: "token", token: tk },
    });
    const reused = enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: out(),
      proof: { type: "token", token: tk },
    });
    await expect(reused).rejects.toMatchObject({ status: 403, code: "FR_ENROLL_TOKEN" });
    const old = await token({ ttl: "1m" });
    f.clock.advance(61_000);
    const expired = enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: out(),
      proof: { type: "token", token: old },
    });
    await expect(expired).rejects.toBeInstanceOf(ServerRefusal);
    await expect(expired).rejects.toMatchObject({ status: 403, code: "FR_ENROLL_TOKEN" });
  });

  it("refuses token requests it cannot honour: a ttl of the wrong type (was a 500), labels without device_id (were dropped)", async () => {
    for (const body of [{ ttl: true }, { ttl: { h: 1 } }, { labels: { site: "lab" } }, { name: "Drone" }]) {
      const r = await f.api("POST", "fleet/provisioners/factory/tokens", body);
      expect(r, JSON.stringify(body)).toMatchObject({ status: 400, code: "FR_VALIDATION" });
    }
  });

  it("rate-limits guessing: after 20 failed proofs a client gets 429 until the window ends", async () => {
    f.clock.advance(61_000);
    const guess = () =>
      f.t.call("POST", "fleet/enroll", { provisioner: "factory", csr: "x", token: `frj_${"A".repeat(43)}` });
    const codes: number[] = [];
    for (let i = 0; i < 22; i++) codes.push((await guess()).statusCode);
    expect(codes.slice(0, 20).every((c) => c === 400 || c === 403)).toBe(true);
    expect(codes.slice(20)).toEqual([429, 429]);
    f.clock.advance(61_000);
    expect((await guess()).statusCode).not.toBe(429);
  });
});
