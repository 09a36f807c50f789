import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError } from "../src/errors/index.js";
import { createServer } from "../src/server/main.js";
import { startTestServer } from "./helpers/server.js";

async function startError(defaults: Record<string, unknown>, dev = false): Promise<FleetError> {
  try {
    const s = await createServer({ env: {}, dev, defaults: { listen: "127.0.0.1:0", ...defaults } });
    await s.close();
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return e as FleetError;
  }
  throw new Error("expected the server to refuse to start");
}

describe("core failure modes", () => {
  it("PostgreSQL unreachable: a clear error naming host:port, quickly, and nothing written", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "fr-fail-")), "data");
    const started = Date.now();
    const e = await startError({ data_dir: dir, storage: "postgres://postgres@127.0.0.1:1/fleetroot" });
    expect(e.code).toBe("FR_STORE_UNAVAILABLE");
    expect(e.message).toContain("127.0.0.1:1");
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(existsSync(join(dir, "audit.log"))).toBe(false);
  });

  it("an unknown key URI scheme for the audit key is refused at start, naming the key", async () => {
    const e = await startError({
      data_dir: mkdtempSync(join(tmpdir(), "fr-fail-")),
      audit: { key: "vault:transit/audit" },
    });
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain("audit.key");
  });

  it("the dev seal is refused outside dev mode; a public listen address needs TLS", async () => {
    expect(
      (await startError({ data_dir: mkdtempSync(join(tmpdir(), "fr-fail-")), seal: { type: "dev" } })).code,
    ).toBe("FR_SEAL_CONFIG");
    const tls = await startError({
      data_dir: mkdtempSync(join(tmpdir(), "fr-fail-")),
      listen: "0.0.0.0:8200",
    });
    expect(tls.message).toContain("tls");
  });

  it("an unsupported storage URL is refused", async () => {
    const e = await startError({ data_dir: mkdtempSync(join(tmpdir(), "fr-fail-")), storage: "mysql://x" });
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain("storage");
  });

  it("when the audit sink cannot be written, requests fail instead of passing unaudited", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-fail-"));
    const t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      dataDir: dir,
      defaults: { audit: { path: "/dev/full" } },
    });
    try {
      const init = await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 });
      expect(init.statusCode).toBe(500);
      expect(init.json().code).toBe("FR_AUDIT_FAILED");
      // The handler never ran: the server is still not initialized.
      const status = await t.call("GET", "sys/init");
      expect(status.statusCode).toBe(500);
      // A read writes its one entry after the handler; that failure is refused and counted the same way.
      expect(status.json().code).toBe("FR_AUDIT_FAILED");
      const metrics = await t.server.app.inject({ method: "GET", url: "/metrics" });
      expect(metrics.body).toMatch(/^fleetroot_audit_failures_total 2$/m);
      expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toEqual([]);
    } finally {
      await t.close().catch(() => undefined);
    }
  });
});
