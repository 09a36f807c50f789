import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { FleetError } from "../src/errors/index.js";
import { createServer } from "../src/server/main.js";
import { cli } from "./helpers/cli.js";
import { serverTls } from "./helpers/tls.js";

/** A port on 127.0.0.1 held by another listener for the whole file. */
async function takenPort(): Promise<{ port: number; holder: NetServer }> {
  const holder = createNetServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const addr = holder.address();
  if (!addr || typeof addr === "string") throw new Error("no port");
  return { port: addr.port, holder };
}

describe("a start that fails before it listened leaves no data dir it created (was: an initialized data dir was left behind)", () => {
  const root = mkdtempSync(join(tmpdir(), "fr-start-clean-"));
  let held: { port: number; holder: NetServer } | undefined;
  const port = async () => (held ??= await takenPort()).port;
  afterAll(() => held?.holder.close());

  it("the CLI with the port in use: FLEETROOT_DATA_DIR (and the parents it made) and --dev's ./.fleetroot-dev are removed; a data dir that existed is kept and its log verifies", async () => {
    const listen = `127.0.0.1:${await port()}`;
    const nested = join(root, "new", "nested", "data");
    const cwd = mkdtempSync(join(root, "cwd-"));
    const existing = mkdtempSync(join(root, "existing-"));
    const runs = await Promise.all([
      cli(["server", "--dev"], { FLEETROOT_DATA_DIR: nested, FLEETROOT_LISTEN: listen }),
      cli(["server", "--dev"], { FLEETROOT_LISTEN: listen }, { cwd }),
      cli(["server", "--dev"], { FLEETROOT_DATA_DIR: existing, FLEETROOT_LISTEN: listen }),
    ]);
    for (const r of runs) {
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toBe(
        `Error: cannot listen on ${listen}: the address is in use (another server running?)\n`,
      );
      expect(r.stdout).not.toContain("listening");
    }
    expect(existsSync(join(root, "new"))).toBe(false);
    expect(readdirSync(cwd)).toEqual([]);
    // A data dir that was there may hold a real install: never removed, never emptied.
    expect(readdirSync(existing)).toContain("root-token");
    const v = await verifyAuditLog(join(existing, "audit.log"), { strict: true });
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 60_000);

  it("the CLI with a listen address that is not this machine's (EADDRNOTAVAIL): one line, exit 1, data dir removed", async () => {
    const dir = mkdtempSync(join(root, "tls-"));
    const tls = serverTls(dir);
    const data = join(dir, "data");
    const config = join(dir, "fleetroot.yaml");
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    writeFileSync(
      config,
      `listen: 192.0.2.1:8443\ndata_dir: ${data}\nseal:\n  type: shamir\n` +
        `tls:\n  cert_file: ${tls.cert}\n  key_file: ${tls.key}\n`,
    );
    const r = await cli(["server", "--config", config]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /^Error: cannot listen on 192\.0\.2\.1:8443: the address is not one of this machine's[^\n]*\n$/,
    );
    expect(existsSync(data)).toBe(false);
  }, 60_000);

  it("discard() removes an audit.path, SQLite store and audit key made outside the new data dir, with the directories made for them; files that were there stay", async () => {
    const listen = `127.0.0.1:${await port()}`;
    const outside = mkdtempSync(join(root, "outside-"));
    const fresh = {
      data_dir: join(outside, "data"),
      listen,
      storage: `sqlite:${join(outside, "db", "deep", "fr.db")}`,
      audit: { path: join(outside, "audit.log"), key: `file:${join(outside, "keys", "audit.pem")}` },
    };
    const first = await createServer({ dev: true, env: {}, defaults: fresh });
    await expect(first.listen()).rejects.toMatchObject({ code: "EADDRINUSE" });
    await first.discard();
    expect(readdirSync(outside)).toEqual([]);

    // The same outside files, there from an earlier server: only the new data dir goes.
    const kept = { ...fresh, listen: "127.0.0.1:0" };
    const earlier = await createServer({ dev: true, env: {}, defaults: kept });
    await earlier.close();
    const other = { ...kept, data_dir: join(outside, "other"), listen };
    const second = await createServer({ dev: true, env: {}, defaults: other });
    await expect(second.listen()).rejects.toMatchObject({ code: "EADDRINUSE" });
    await second.discard();
    expect(readdirSync(outside).sort()).toEqual(["audit.log", "audit.log.lock", "data", "db", "keys"]);
    expect(existsSync(join(outside, "db", "deep", "fr.db"))).toBe(true);
    expect(existsSync(join(outside, "keys", "audit.pem"))).toBe(true);
    const v = await verifyAuditLog(join(outside, "audit.log"), { strict: true });
    expect(v.ok, JSON.stringify(v)).toBe(true);
  });

  it("a start that fails inside createServer removes the data dir it made, and keeps one that was there", async () => {
    // The store opens, then the audit key cannot be made: /proc takes no new files.
    const refuse = async (dataDir: string) => {
      try {
        await createServer({
          dev: true,
          env: {},
          defaults: { data_dir: dataDir, listen: "127.0.0.1:0", audit: { key: "file:/proc/nope/k.pem" } },
        });
      } catch (e) {
        return e;
      }
      throw new Error("expected the start to fail");
    };
    const made = join(root, "made-then-failed");
    expect(await refuse(made)).toBeInstanceOf(FleetError);
    expect(existsSync(made)).toBe(false);
    const there = join(root, "there-then-failed");
    mkdirSync(there);
    expect(await refuse(there)).toBeInstanceOf(FleetError);
    expect(readdirSync(there)).toContain("fleetroot.db");
  });

  it("a stop asked for during createServer (its signal) ends the start at the next step: the log of a data dir that was there verifies, one it made is gone", async () => {
    const start = async (dataDir: string) => {
      const stop = new AbortController();
      const reason = new Error("stop");
      try {
        await createServer({
          dev: true,
          env: {},
          defaults: { data_dir: dataDir, listen: "127.0.0.1:0" },
          signal: stop.signal,
          // Mid-way: the dev root token is printed once the seal is initialized.
          log: (line) => {
            if (line.startsWith("Root Token:")) stop.abort(reason);
          },
        });
      } catch (e) {
        expect(e).toBe(reason);
        return;
      }
      throw new Error("expected the start to stop");
    };
    const made = join(root, "made-then-stopped");
    await start(made);
    expect(existsSync(made)).toBe(false);
    const there = mkdtempSync(join(root, "there-then-stopped-"));
    await start(there);
    const v = await verifyAuditLog(join(there, "audit.log"), { strict: true });
    expect(v.ok, JSON.stringify(v)).toBe(true);
  });
});
