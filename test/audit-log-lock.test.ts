import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { createServer, type Server } from "../src/server/main.js";

describe("one audit log, one server", () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it("refuses a second server with its own data_dir but the first one's audit.path", async () => {
    const d = mkdtempSync(join(tmpdir(), "fr-audit-lock-a-"));
    const a = await createServer({ dev: true, env: {}, defaults: { data_dir: d, listen: "127.0.0.1:0" } });
    servers.push(a);
    const other = mkdtempSync(join(tmpdir(), "fr-audit-lock-b-"));
    // Its own data_dir, the first server's audit log and key.
    const second = () =>
      createServer({
        dev: true,
        env: {},
        defaults: {
          data_dir: other,
          listen: "127.0.0.1:0",
          audit: { path: join(d, "audit.log"), key: `file:${join(d, "audit-key.pem")}` },
        },
      });
    let err: unknown;
    try {
      servers.push(await second());
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "FR_AUDIT_FILE" });
    expect((err as Error).message).toMatch(/audit log .*audit\.log is in use by another Fleetroot server/);
    // The first server's chain is untouched and goes on.
    const r = await a.app.inject({ method: "GET", url: "/v1/sys/health" });
    expect(r.statusCode).toBe(200);
    await a.close();
    servers.length = 0;
    expect(await verifyAuditLog(join(d, "audit.log"), { strict: true })).toMatchObject({ ok: true });
    // Once the first has stopped, the second may take the log over.
    servers.push(await second());
  });
});
