/** The device side when things go wrong: what the agent does with bad output dirs, hooks, clocks and state files. */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice, psaTokenFromCommand } from "../src/agent/enroll.js";
import { readConfig, readPair } from "../src/agent/files.js";
import { runAgent } from "../src/agent/run.js";
import { runReloadHook } from "../src/agent/run-hook.js";
import { ManualClock } from "../src/util/clock.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";

describe("agent robustness", () => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet({ tls: true });
    await f.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
  });
  afterAll(async () => f?.close());

  const token = async () =>
    ((await f.api("POST", "fleet/provisioners/factory/tokens", {})).data as { token: string }).token;
  const out = () => mkdtempSync(join(tmpdir(), "fr-agent-"));
  const enroll = (dir: string, tk: string, reloadCmd?: string) =>
    enrollDevice({
      server: f.url,
      caCert: f.tlsCa,
      provisioner: "factory",
      out: dir,
      proof: { type: "token", token: tk },
      reloadCmd,
    });

  it("an output dir it cannot write is refused before the join token is spent (was: token spent, key lost)", async () => {
    const tk = await token();
    const file = join(out(), "a-file");
    writeFileSync(file, "");
    await expect(enroll(join(file, "sub"), tk)).rejects.toMatchObject({ code: "FR_AGENT_STATE" });
    await expect(enroll(out(), tk)).resolves.toMatchObject({ serial: expect.any(String) });
  });

  it("a refused enrollment leaves no directory behind", async () => {
    const parent = out();
    await expect(enroll(join(parent, "a", "b"), "frj_not-a-token")).rejects.toMatchObject({
      code: "FR_ENROLL_TOKEN",
    });
    expect(readdirSync(parent)).toEqual([]);
  });

  it("an output dir holding another device's identity is refused, untouched, token unspent (was: replaced)", async () => {
    const dir = out();
    await enroll(dir, await token());
    const before = await readPair(dir);
    const tk = await token();
    await expect(enroll(dir, tk)).rejects.toMatchObject({
      code: "FR_AGENT_STATE",
      message: expect.stringContaining("already holds a device identity"),
    });
    expect((await readPair(dir)).state).toEqual(before.state);
    await expect(enroll(out(), tk)).resolves.toMatchObject({ serial: expect.any(String) });
  });

  it("a failing reload command is reported, not swallowed", async () => {
    const r = await enroll(out(), await token(), "echo reload-broke >&2; exit 3");
    expect(r.reloadError).toMatch(/exited with status 3: reload-broke/);
    const ok = await enroll(out(), await token(), "true");
    expect(ok.reloadError).toBeUndefined();
  });

  it("a reload command that ignores SIGTERM and hangs is killed at the timeout (was: agent stalled)", async () => {
    const dir = out();
    const started = Date.now();
    const r = await runReloadHook(`trap "" TERM; sleep 30; echo late`, dir, 300);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r).toMatchObject({ ok: false, output: expect.stringMatching(/timed out/) });
  });

  it("a PSA token command that ignores SIGTERM and hangs is killed at the timeout (was: enroll hung)", async () => {
    const started = Date.now();
    await expect(
      psaTokenFromCommand(`trap "" TERM; sleep 30; echo late`, Buffer.alloc(32), 300),
    ).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('agent enroll: a --server that is not an http(s) URL is a usage error (was: "Invalid URL", exit 1)', async () => {
    const args = ["agent", "enroll", "--provisioner", "factory", "--token", "frj_x", "--out", out()];
    const r = await cli([...args, "--server", "fleet.example:8200"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--server must be an http\(s\) URL/);
  });

  it("a corrupt agent.json or state.json is FR_AGENT_STATE at start (was: a TypeError, or nothing until renewal)", async () => {
    const dir = out();
    await enroll(dir, await token());
    const cfg = readFileSync(join(dir, "agent.json"), "utf8");
    writeFileSync(join(dir, "agent.json"), "{}");
    await expect(readConfig(dir)).rejects.toMatchObject({ code: "FR_AGENT_STATE" });
    await expect(runAgent({ out: dir, once: true })).rejects.toMatchObject({ code: "FR_AGENT_STATE" });
    writeFileSync(join(dir, "agent.json"), cfg);
    writeFileSync(join(dir, "current", "state.json"), '{"deviceId":"x"}');
    await expect(readPair(dir)).rejects.toMatchObject({ code: "FR_AGENT_STATE" });
  });

  it("a device clock ahead of the server's backs off instead of renewing in a tight loop", async () => {
    const dir = out();
    await enroll(dir, await token());
    // Two hours ahead: every certificate the server issues (1h) is already past its renewal time here.
    const clock = new ManualClock(f.clock.now().getTime() + 2 * 3600_000);
    const ac = new AbortController();
    const waits: number[] = [];
    let renewals = 0;
    await runAgent({
      out: dir,
      clock,
      signal: ac.signal,
      random: () => 0.5,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
      log: (line) => {
        if (line.startsWith("renewed") && ++renewals === 3) ac.abort();
      },
    });
    expect(renewals).toBe(3);
    // A wait after each renewal, growing (without the fix: no wait at all).
    expect(waits.length).toBe(3);
    expect(waits[0]).toBeGreaterThanOrEqual(500);
    expect(waits[1]!).toBeGreaterThan(waits[0]!);
  });
});
