import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./hvac/kv_flow.py", import.meta.url));
const PLANTED = "hvac-planted-51b0e2c7d9";

describeEachStore("secrets: Debian hvac 0.11.2 drives a running server", (db) => {
  let t: TestServer;
  let url = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
    url = await t.server.listen();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("runs the hvac flow: init, unseal, KV v2, tokens, policies, wrapping, KV v1, seal", async () => {
    // A missing peer fails the test (never a skip): scripts/install-test-deps.sh installs python3-hvac.
    expect(existsSync("/usr/lib/python3/dist-packages/hvac"), "python3-hvac is not installed").toBe(true);
    // Asynchronous: the server under test runs in this process and must keep answering.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        PYTHON,
        [SCRIPT],
        { env: { PATH: process.env.PATH, VAULT_ADDR: url, PLANTED, NO_PROXY: "*" }, timeout: 60_000 },
        (err, stdout, stderr) =>
          resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    const out = `${String(r.stdout)}\n${String(r.stderr)}`;
    expect(r.status, out).toBe(0);
    for (const s of [
      "init unseal seal-status",
      "kv create read versions",
      "kv cas conflict",
      "kv delete undelete destroy",
      "kv metadata list config",
      "token policy forbidden",
      "token revoke",
      "wrap unwrap",
      "kv v1 mount",
      "seal",
    ]) {
      expect(String(r.stdout)).toContain(`ok ${s}\n`);
    }
    expect(String(r.stdout)).toContain("ALL OK");

    // The audit log saw it all, with secret values only as HMACs.
    const audit = readFileSync(t.server.core.paths.auditPath, "utf8");
    expect(audit).not.toContain(PLANTED);
    for (const needle of [
      "secret/data/app/db",
      "sys/wrapping/unwrap",
      "wrapping.unwrap_refused",
      "auth.denied",
      "hmac-sha256:",
    ]) {
      expect(audit).toContain(needle);
    }
  });
});
