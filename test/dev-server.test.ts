import { spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { cli, projectRoot } from "./helpers/cli.js";

/** Starts `npm start` (fleetroot server --dev) on a free port and a temp data dir; resolves with its URL. */
function npmStart(
  dataDir: string,
): Promise<{ child: ChildProcess; url: string; pid: number; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["start", "--silent"], {
      cwd: projectRoot,
      detached: true,
      env: {
        ...process.env,
        FLEETROOT_DATA_DIR: dataDir,
        FLEETROOT_LISTEN: "127.0.0.1:0",
        FLEETROOT_FROM_SOURCE: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`npm start did not come up in time:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+) \(pid (\d+)\)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, pid: Number(m[2]), output: () => out });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}:\n${out}`));
    });
  });
}

describe("npm start (dev server)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "fr-dev-"));
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child?.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
  });

  it("comes up initialized and unsealed, says it is dev mode, serves health and the root token works; SIGTERM shuts it down cleanly", async () => {
    const started = await npmStart(dataDir);
    child = started.child;
    expect(started.output()).toContain("DEV MODE");
    // A dev CA exists from the first start, and its fingerprint is printed.
    const fp = /Dev CA \(pki\/ca\) SHA-256 fingerprint: ([0-9A-F:]{95})/.exec(started.output());
    expect(fp, started.output()).not.toBeNull();
    const health = await fetch(`${started.url}/v1/sys/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ initialized: true, sealed: false });

    const token = readFileSync(join(dataDir, "root-token"), "utf8").trim();
    expect(started.output()).toContain(token);
    const self = await fetch(`${started.url}/v1/auth/token/lookup-self`, {
      headers: { "x-vault-token": token },
    });
    expect(self.status).toBe(200);
    const caPem = await (await fetch(`${started.url}/v1/pki/ca/pem`)).text();
    expect(new X509Certificate(caPem).fingerprint256).toBe(fp![1]);
    const metrics = await fetch(`${started.url}/metrics`);
    const text = await metrics.text();
    expect(text).toContain("fleetroot_http_requests_total");
    // Group commit is visible: lines per audit sync, commits per store sync.
    expect(text).toMatch(/^# TYPE fleetroot_audit_syncs_total counter$/m);
    expect(Number(/^fleetroot_audit_lines_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^fleetroot_store_commits_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);

    const exited = new Promise<number | null>((r) => child!.on("exit", (code) => r(code)));
    process.kill(started.pid, "SIGTERM");
    expect(await exited).toBe(0);
    const audit = await verifyAuditLog(join(dataDir, "audit.log"), {});
    expect(audit.ok).toBe(true);
    const last = readFileSync(join(dataDir, "audit.log"), "utf8").trim().split("\n").pop()!;
    expect(JSON.parse(last).type).toBe("checkpoint");
    // A cleanly stopped server's log has nothing after its last signed checkpoint.
    const strict = await cli(["audit", "verify", "--strict", join(dataDir, "audit.log")]);
    expect(strict.code, strict.stderr).toBe(0);
  });
});
