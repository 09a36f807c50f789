import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProgram, run } from "../program.js";
import { operatorCommands } from "./operator.js";

describe("operator init", () => {
  const bodies: unknown[] = [];
  let server: http.Server;
  let addr: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let data = "";
      req.on("data", (c: Buffer) => (data += c.toString()));
      req.on("end", () => {
        bodies.push(JSON.parse(data));
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ keys: ["aa"], keys_base64: ["qg=="], root_token: "frs.x" }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  async function init(...args: string[]): Promise<unknown> {
    bodies.length = 0;
    const out = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await buildProgram([operatorCommands]).parseAsync(["-a", addr, "operator", "init", ...args], {
        from: "user",
      });
    } finally {
      out.mockRestore();
    }
    return bodies[0];
  }

  it("operator init -t is the threshold, not the global --token (regression: -t was taken as the token)", async () => {
    expect(await init("-n", "3", "-t", "2")).toEqual({ secret_shares: 3, secret_threshold: 2 });
    expect(await init("-n", "4", "-t3")).toEqual({ secret_shares: 4, secret_threshold: 3 });
    expect(await init("--key-shares", "3", "--key-threshold", "2")).toEqual({
      secret_shares: 3,
      secret_threshold: 2,
    });
    expect(await init()).toEqual({ secret_shares: 5, secret_threshold: 3 });
  });
});

describe("operator status", () => {
  let status: Record<string, unknown> = {};
  let server: http.Server;
  let addr: string;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(status));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const base = { type: "shamir", n: 5, t: 3, progress: 0, nonce: "", version: "0.1.0" };

  async function statusOf(
    reply: Record<string, unknown>,
    ...args: string[]
  ): Promise<{ code: number; out: string; err: string }> {
    status = reply;
    let out = "";
    let err = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
    try {
      const code = await run(["-a", addr, ...args, "operator", "status"]);
      return { code, out, err };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }

  it("an uninitialized server is reported as not initialized with operator init as the next step, not as sealed (regression)", async () => {
    const r = await statusOf({ ...base, n: 0, t: 0, initialized: false, sealed: true });
    // Exit code 2 as for any server that is sealed (an uninitialized one is), as the help says.
    expect(r.code).toBe(2);
    expect(r.out + r.err).toContain("not initialized");
    expect(r.out + r.err).toContain("fleetroot operator init");
    expect(r.err).not.toContain("is sealed");
    expect(r.out).toMatch(/Initialized\s+false/);
  });

  it("--format json keeps the raw fields of an uninitialized server", async () => {
    const reply = { ...base, n: 0, t: 0, initialized: false, sealed: true };
    const r = await statusOf(reply, "--format", "json");
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toEqual(reply);
    expect(r.err).toContain("fleetroot operator init");
  });

  it("an initialized sealed server still says sealed and exits 2; an unsealed one exits 0", async () => {
    const sealed = await statusOf({ ...base, initialized: true, sealed: true });
    expect([sealed.code, sealed.err]).toEqual([2, expect.stringContaining("the server is sealed")]);
    const open = await statusOf({ ...base, initialized: true, sealed: false });
    expect([open.code, open.err]).toEqual([0, ""]);
  });

  it("operator status --help documents the exit codes, the uninitialized case included", async () => {
    let out = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
    try {
      expect(await run(["operator", "status", "--help"])).toBe(0);
    } finally {
      o.mockRestore();
    }
    expect(out.replace(/\s+/g, " ")).toContain(
      "exit code 2 when sealed (also when not yet initialized), 1 on error",
    );
  });
});
