import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";

/** A request that fails on the server's side leaves its cause in the server's log, never in the reply. */
describe("server log of internal failures", () => {
  let server: Server;
  const lines: string[] = [];

  beforeAll(async () => {
    server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: mkdtempSync(join(tmpdir(), "fr-error-log-")), listen: "127.0.0.1:0" },
      log: (line) => lines.push(line),
      modules: [
        {
          name: "probe",
          migrations: {},
          routes: () => [
            {
              method: "GET",
              url: "/v1/probe/boom",
              auth: "token",
              handler: () => Promise.reject(new Error("the disk is on fire")),
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await server.close();
  });

  const get = (url: string) =>
    server.app.inject({ method: "GET", url, headers: { "x-vault-token": server.devRootToken! } });

  it("logs a 500 with its request id, route and cause; the client sees neither", async () => {
    lines.length = 0;
    const r = await get("/v1/probe/boom");
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain("on fire");
    const errors = lines.filter((l) => l.startsWith("error:"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: request [0-9a-f-]{36} \(GET probe\/boom\) failed: FR_INTERNAL/);
    expect(errors[0]).toContain("caused by Error: the disk is on fire");
  });

  it("does not log what the client got wrong (4xx)", async () => {
    lines.length = 0;
    expect((await get("/v1/probe/nothing-here")).statusCode).toBe(404);
    const denied = await server.app.inject({
      method: "GET",
      url: "/v1/probe/boom",
      headers: { "x-vault-token": "not-a-token" },
    });
    expect(denied.statusCode).toBe(403);
    expect(lines.filter((l) => l.startsWith("error:"))).toEqual([]);
  });
});
