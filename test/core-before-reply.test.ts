import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";
import { envelope } from "../src/server/types.js";

/** ctx.beforeReply: a wait (a commit's durability, say) the reply holds for along with its audit entry. */
describe("replies wait for what a route hands to beforeReply", () => {
  let server: Server;
  let log: string;
  let release: (() => void) | undefined;
  let fail: ((e: Error) => void) | undefined;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-before-reply-"));
    log = join(dir, "audit.log");
    server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: dir, listen: "127.0.0.1:0" },
      modules: [
        {
          name: "probe",
          migrations: {},
          routes: () => [
            {
              method: "POST",
              url: "/v1/probe/held",
              auth: "token",
              handler: (ctx) => {
                ctx.beforeReply(
                  new Promise<void>((resolve, reject) => {
                    release = resolve;
                    fail = reject;
                  }),
                );
                return Promise.resolve(envelope({ done: true }));
              },
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await server.close();
  });

  const call = () =>
    server.app.inject({
      method: "POST",
      url: "/v1/probe/held",
      headers: { "x-vault-token": server.devRootToken!, "content-type": "application/json" },
      payload: "{}",
    });

  it("no reply before the wait ends; then the route's answer", async () => {
    let answered = false;
    const pending = call().then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(release).toBeDefined();
    expect(answered).toBe(false);
    release!();
    const r = await pending;
    expect(r.statusCode).toBe(200);
    expect(r.json().data).toEqual({ done: true });
  });

  it("a wait that fails fails the request with a clear error, never a success", async () => {
    release = undefined;
    const pending = call();
    await new Promise((r) => setTimeout(r, 50));
    fail!(new Error("the commit could not be synced"));
    const r = await pending;
    expect(r.statusCode).toBe(500);
    expect(r.json().errors.join(" ")).not.toContain("done");
    // The request and its response entry are in the audit log either way.
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines.filter((l) => l.includes('"path":"probe/held"')).length).toBeGreaterThanOrEqual(4);
  });
});
