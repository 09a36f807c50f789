/**
 * Races on the fleet side: one join token presented by many enrollments at once, one serial revoked by
 * many requests at once, decommissioning while a renewal is being signed. Outcome counts only, never
 * timings; on SQLite and on PostgreSQL.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { buildDeviceCsr, generateSoftwareKey } from "../src/agent/enroll-crypto.js";
import { readConfig } from "../src/agent/files.js";
import { renewOnce } from "../src/agent/run.js";
import { Authority } from "../src/pki/authority.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { opensslCsr, run, tempDir } from "./helpers/pki.js";
import { describeEachStore } from "./helpers/stores.js";

const N = 20;

describeEachStore("races: fleet", (db) => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet({ storage: db.url(), tls: true });
    const p = await f.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
    expect(p.status, JSON.stringify(p)).toBe(200);
  });
  afterAll(async () => f?.close());
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Decommissions `id` once the PKI has signed its next certificate: after every check, before recording. */
  const decommissionWhileSigning = (id: string) => {
    const sign = Authority.prototype.sign;
    vi.spyOn(Authority.prototype, "sign").mockImplementation(async function (
      this: Authority,
      ...args: Parameters<Authority["sign"]>
    ) {
      const issued = await sign.apply(this, args);
      if (args[1].common_name === id) {
        const d = await f.api("POST", `fleet/devices/${id}/decommission`, {});
        expect(d.status, JSON.stringify(d)).toBe(200);
      }
      return issued;
    });
  };

  const token = async (body: Record<string, unknown> = {}) => {
    const r = await f.api("POST", "fleet/provisioners/factory/tokens", body);
    expect(r.status, JSON.stringify(r)).toBe(200);
    return (r.data as { token: string }).token;
  };

  /** Every certificate the PKI issued for `device` (there are `n`) is revoked. */
  const expectAllRevoked = async (device: string, n: number) => {
    const certs = (await f.api("GET", "pki/certs?list=true")).data as {
      key_info: Record<string, { subject: string; revoked: boolean }>;
    };
    const mine = Object.entries(certs.key_info).filter(([, c]) => c.subject.includes(device));
    expect(mine.length).toBe(n);
    for (const [s, c] of mine) expect(c.revoked, s).toBe(true);
  };

  it("one join token presented by 20 parallel enrollments: exactly one device enrolls", async () => {
    const csr = await buildDeviceCsr(generateSoftwareKey("ecdsa-p256").signer);
    // Unbound: each enrollment asks for its own id, so a double redemption would show as two devices.
    const tk = await token();
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        f.t.call("POST", "fleet/enroll", {
          provisioner: "factory",
          csr,
          token: tk,
          device_id: `jt-race-${i}`,
        }),
      ),
    );
    const codes = rs.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200).length, JSON.stringify(rs.map((r) => r.body))).toBe(1);
    expect(codes.filter((c) => c === 403).length).toBe(N - 1);
    const list = await f.api("GET", "fleet/devices?list=true");
    const ids = ((list.data as { keys: string[] }).keys ?? []).filter((k) => k.startsWith("jt-race-"));
    expect(ids.length).toBe(1);

    // Bound to a device id: the same, one certificate for that device.
    f.clock.advance(61_000); // past the enrollment failure window the refusals above filled
    const bound = await token({ device_id: "jt-bound" });
    const rs2 = await Promise.all(
      Array.from({ length: N }, () =>
        f.t.call("POST", "fleet/enroll", { provisioner: "factory", csr, token: bound }),
      ),
    );
    expect(rs2.filter((r) => r.statusCode === 200).length).toBe(1);
    const dev = (await f.api("GET", "fleet/devices/jt-bound")).data as { certificates: unknown[] };
    expect(dev.certificates.length).toBe(1);
    // The refused attempts count against 127.0.0.1's enrollment failure limit; let its window pass.
    f.clock.advance(61_000);
  });

  it("decommission while a renewal is being signed: the renewed certificate does not survive", async () => {
    const tk = await token({ device_id: "dc-race" });
    const dir = mkdtempSync(join(tmpdir(), "fr-agent-"));
    await enrollDevice({
      server: f.url,
      caCert: f.tlsCa,
      provisioner: "factory",
      out: dir,
      proof: { type: "token", token: tk },
    });
    decommissionWhileSigning("dc-race");
    const renewal = await renewOnce(dir, await readConfig(dir)).then(
      () => "renewed",
      (e: unknown) => e,
    );
    vi.restoreAllMocks();
    expect(renewal).toMatchObject({ status: 403 });
    const dev = (await f.api("GET", "fleet/devices/dc-race")).data as {
      status: string;
      certificates: { serial: string; revoked_at: string | null }[];
    };
    expect(dev.status).toBe("decommissioned");
    expect(dev.certificates.length).toBe(1);
    expect(dev.certificates.every((c) => c.revoked_at !== null)).toBe(true);
    // Every certificate the PKI issued for the device is revoked, including the one signed for the renewal.
    await expectAllRevoked("dc-race", 2);
  });

  it("decommission while a re-enrollment is being recorded: the new certificate does not survive", async () => {
    const csr = await buildDeviceCsr(generateSoftwareKey("ecdsa-p256").signer);
    const first = await f.t.call("POST", "fleet/enroll", {
      provisioner: "factory",
      csr,
      token: await token({ device_id: "dc-enroll" }),
    });
    expect(first.statusCode, first.body).toBe(200);
    const again = await token({ device_id: "dc-enroll" });
    decommissionWhileSigning("dc-enroll");
    const r = await f.t.call("POST", "fleet/enroll", { provisioner: "factory", csr, token: again });
    vi.restoreAllMocks();
    expect([r.statusCode, r.json().code]).toEqual([400, "FR_DEVICE_STATE"]);
    const dev = (await f.api("GET", "fleet/devices/dc-enroll")).data as {
      status: string;
      certificates: { revoked_at: string | null }[];
    };
    expect(dev.status).toBe("decommissioned");
    expect(dev.certificates.length).toBe(1);
    await expectAllRevoked("dc-enroll", 2);
  });

  it("one serial revoked by 20 parallel requests: one revocation, the CRL lists it once", async () => {
    const dir = tempDir();
    const csr = opensslCsr(dir, "r").csr;
    const issued = await f.api("POST", "pki/sign/device", { csr, common_name: "rev-race", ttl: "24h" });
    expect(issued.status, JSON.stringify(issued)).toBe(200);
    const serial = (issued.data as { serial_number: string }).serial_number;
    // Load the CRL state first (a revocation is then appended to it), and also race a cold one below.
    expect((await f.t.call("GET", "pki/crl")).statusCode).toBe(200);
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        i % 5 === 4
          ? f.t.call("GET", "pki/crl")
          : f.t.call("POST", "pki/revoke", { serial_number: serial }, f.root),
      ),
    );
    for (const r of rs) expect(r.statusCode, r.body).toBe(200);
    const times = new Set(rs.filter((_, i) => i % 5 !== 4).map((r) => r.json().data.revocation_time));
    expect(times.size).toBe(1);
    const hex = serial.replace(/:/g, "").toLowerCase().replace(/^0+/, "");
    const listedIn = async (path: string) => {
      const der = (await f.t.call("GET", path)).rawPayload;
      writeFileSync(join(dir, "crl.der"), der);
      const text = run("openssl", [
        "crl",
        "-inform",
        "DER",
        "-in",
        join(dir, "crl.der"),
        "-noout",
        "-text",
      ]).out;
      return [...text.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].filter(
        (m) => m[1]!.toLowerCase().replace(/^0+/, "") === hex,
      ).length;
    };
    expect(await listedIn("pki/crl/delta")).toBe(1);
    // The complete CRL rebuilt from the in-memory entries (schedule), then reloaded from the store (rotate).
    f.clock.advance(13 * 3600_000);
    expect(await listedIn("pki/crl")).toBe(1);
    expect((await f.t.call("GET", "pki/crl/rotate", undefined, f.root)).statusCode).toBe(200);
    expect(await listedIn("pki/crl")).toBe(1);
    const audit = readFileSync(f.t.server.core.paths.auditPath, "utf8");
    expect(audit.split('"pki.revoke"').length - 1).toBe(1);
  });
});
