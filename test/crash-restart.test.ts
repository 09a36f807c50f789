import { spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { FleetError } from "../src/errors/index.js";
import { createServer, type Server } from "../src/server/main.js";
import { spawnDevServer } from "./helpers/dev-child.js";

/** `fleetroot server --dev` in a child process on a free port; resolves with its URL once it listens. */
function startChild(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const run = spawnDevServer(dataDir);
  return new Promise((resolve, reject) => {
    const onData = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output());
      if (m) resolve({ child: run.child, url: m[1]! });
    };
    run.child.stdout!.on("data", onData);
    run.child.stderr!.on("data", onData);
    void run.exited.then(({ code }) => reject(new Error(`the server exited with ${code}:\n${run.output()}`)));
  });
}

async function refusal(dataDir: string): Promise<FleetError> {
  try {
    const s = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: dataDir, listen: "127.0.0.1:0" },
    });
    await s.close();
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return e as FleetError;
  }
  throw new Error("expected the server to refuse to start");
}

describe("crash and restart", () => {
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const s of servers.splice(0)) await s.close().catch(() => undefined);
  });

  it("a second server on a running server's data dir is refused; after kill -9 the next start works and every acknowledged write is there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-crash-"));
    const first = await startChild(dir);
    children.push(first.child);
    const token = readFileSync(join(dir, "root-token"), "utf8").trim();
    const headers = { "x-vault-token": token, "content-type": "application/json" };
    const acked: Array<{ key: string; version: number; value: string }> = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 5; i++) {
          const key = `k${w}`;
          const value = `${w}-${i}`;
          const r = await fetch(`${first.url}/v1/secret/data/${key}`, {
            method: "POST",
            headers,
            body: JSON.stringify({ data: { v: value } }),
          });
          expect(r.status).toBe(200);
          acked.push({
            key,
            version: ((await r.json()) as { data: { version: number } }).data.version,
            value,
          });
        }
      }),
    );

    // While it runs, a second server on the same data dir would interleave its lines into the same chain.
    const e = await refusal(dir);
    expect(e.code).toBe("FR_AUDIT_FILE");
    expect(e.message).toContain("in use by another Fleetroot server");
    expect((await verifyAuditLog(join(dir, "audit.log"))).ok).toBe(true);

    const exited = new Promise((r) => first.child.once("exit", r));
    first.child.kill("SIGKILL");
    await exited;

    // The lock dies with the process: the restart needs no clean-up.
    const s = await createServer({ dev: true, env: {}, defaults: { data_dir: dir, listen: "127.0.0.1:0" } });
    servers.push(s);
    for (const a of acked) {
      const r = await s.app.inject({
        method: "GET",
        url: `/v1/secret/data/${a.key}?version=${a.version}`,
        headers: { "x-vault-token": token },
      });
      expect(r.statusCode).toBe(200);
      expect((r.json() as { data: { data: { v: string } } }).data.data.v).toBe(a.value);
    }
    await s.close();
    const v = await verifyAuditLog(join(dir, "audit.log"), { strict: true });
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 90_000);

  it("a data dir on a read-only mount is refused with one clear error", async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), "fr-crash-ro-"));
    const s = await createServer({ dev: true, env: {}, defaults: { data_dir: dir, listen: "127.0.0.1:0" } });
    await s.close();
    const copy = mkdtempSync(join(tmpdir(), "fr-crash-rocopy-"));
    cpSync(dir, copy, { recursive: true });
    const mnt = join(copy, "..", `${copy.split("/").pop()}-mnt`);
    mkdirSync(mnt);
    const bind = spawnSync("mount", ["--bind", copy, mnt]);
    if (bind.status !== 0) ctx.skip(); // needs root and mount(8)
    try {
      if (spawnSync("mount", ["-o", "remount,bind,ro", mnt]).status !== 0) ctx.skip();
      const e = await refusal(mnt);
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain(`data_dir ${mnt} cannot be written`);
      expect(e.message).toContain("read-only");
    } finally {
      spawnSync("umount", [mnt]);
    }
  }, 30_000);
});
