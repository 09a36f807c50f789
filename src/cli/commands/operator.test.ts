import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProgram } from "../program.js";
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
