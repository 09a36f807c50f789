import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { spawnDevServer, type DevServerChild } from "./helpers/dev-child.js";

type Run = DevServerChild;
const startServer = spawnDevServer;

/** Resolves once `ready()` holds (checked every 2 ms), or when the child has exited. */
async function when(run: Run, ready: () => boolean): Promise<void> {
  while (!ready() && run.child.exitCode === null && run.child.signalCode === null) {
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("SIGTERM while `fleetroot server` starts (was: killed by the default handler, an empty audit log left)", () => {
  const runs: Run[] = [];
  afterEach(() => {
    for (const r of runs.splice(0))
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
  });

  it("stops at the next step with exit 0 and one line; the audit log is absent or verifies; a data dir it made is gone", async () => {
    const root = mkdtempSync(join(tmpdir(), "fr-start-sig-"));
    const points: Array<{ name: string; ready: (dir: string, run: Run) => boolean }> = [
      { name: "the data dir appeared", ready: (dir) => existsSync(dir) },
      { name: "the database appeared", ready: (dir) => existsSync(join(dir, "fleetroot.db")) },
      { name: "the audit log appeared", ready: (dir) => existsSync(join(dir, "audit.log")) },
      { name: "the root token was printed", ready: (_, run) => run.output().includes("Root Token:") },
    ];
    const results = await Promise.all(
      points.map(async (p) => {
        const dir = join(root, p.name.replace(/\W+/g, "-"));
        const run = startServer(dir);
        runs.push(run);
        await when(run, () => p.ready(dir, run));
        run.child.kill("SIGTERM");
        return { point: p.name, dir, run, exit: await run.exited };
      }),
    );
    for (const { point, dir, run, exit } of results) {
      const why = `${point}:\n${run.output()}`;
      expect(exit, why).toEqual({ code: 0, signal: null });
      if (run.output().includes("listening on")) {
        // Slow to see the signal: it came once the server was up, an ordinary stop.
        expect(run.output(), why).toContain("SIGTERM received: finishing requests and closing");
      } else {
        expect(run.output(), why).toContain(
          "SIGTERM received while starting: start interrupted, nothing is running\n",
        );
        expect(existsSync(dir), why).toBe(false);
      }
      if (existsSync(join(dir, "audit.log"))) {
        const v = await verifyAuditLog(join(dir, "audit.log"), { strict: true });
        expect(v.ok, `${why}\n${JSON.stringify(v)}`).toBe(true);
      }
    }
  }, 60_000);

  it("on a data dir that was there: the start stops, the dir is kept and its audit log verifies", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-start-sig-kept-"));
    const run = startServer(dir);
    runs.push(run);
    await when(run, () => existsSync(join(dir, "audit.log")));
    run.child.kill("SIGTERM");
    expect(await run.exited, run.output()).toEqual({ code: 0, signal: null });
    expect(run.output()).toContain("start interrupted");
    const v = await verifyAuditLog(join(dir, "audit.log"), { strict: true });
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 60_000);

  it("at fixed times from the spawn (0, 300 and 1000 ms): exit 0, or killed while the CLI itself still loaded, with nothing made", async () => {
    const root = mkdtempSync(join(tmpdir(), "fr-start-sig-at-"));
    const results = await Promise.all(
      [0, 300, 1000].map(async (ms) => {
        const dir = join(root, `at-${ms}`);
        const run = startServer(dir);
        runs.push(run);
        await new Promise((r) => setTimeout(r, ms));
        run.child.kill("SIGTERM");
        return { ms, dir, run, exit: await run.exited };
      }),
    );
    for (const { ms, dir, run, exit } of results) {
      const why = `${ms} ms:\n${run.output()}`;
      // Before the server command runs (loading the CLI from source takes about a second), SIGTERM has its
      // default effect; nothing has been opened or created then.
      if (exit.signal === "SIGTERM") expect(existsSync(dir), why).toBe(false);
      else expect(exit, why).toEqual({ code: 0, signal: null });
      if (existsSync(join(dir, "audit.log"))) {
        const v = await verifyAuditLog(join(dir, "audit.log"), { strict: true });
        expect(v.ok, `${why}\n${JSON.stringify(v)}`).toBe(true);
      }
    }
  }, 60_000);
});
