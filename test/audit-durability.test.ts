import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";

/** Which replies wait for their audit entry to be synced (docs/audit.md, audit.sync_reads). */
describe("audit durability per request kind", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start(syncReads?: boolean): Promise<{ server: Server; log: string }> {
    const dir = mkdtempSync(join(tmpdir(), "fr-audit-dur-"));
    server = await createServer({
      dev: true,
      env: {},
      defaults: {
        data_dir: dir,
        listen: "127.0.0.1:0",
        ...(syncReads === undefined ? {} : { audit: { sync_reads: syncReads } }),
      },
    });
    return { server, log: join(dir, "audit.log") };
  }

  const get = (s: Server) =>
    s.app.inject({
      method: "GET",
      url: "/v1/sys/policies/acl/default",
      headers: { "x-vault-token": s.devRootToken! },
    });
  const put = (s: Server, name: string) =>
    s.app.inject({
      method: "PUT",
      url: `/v1/sys/policies/acl/${name}`,
      headers: { "x-vault-token": s.devRootToken!, "content-type": "application/json" },
      payload: JSON.stringify({ policy: 'path "x/*" { capabilities = ["read"] }' }),
    });
  const entryFor = (log: string, id: string) =>
    readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; request?: { id: string } })
      .find((e) => e.type === "response" && e.request?.id === id);

  it("by default, a read's entry is in the file when its reply arrives; a write's is synced first", async () => {
    const { server: s, log } = await start();
    const r = await get(s);
    expect(r.statusCode).toBe(200);
    expect(entryFor(log, (r.json() as { request_id: string }).request_id)).toBeDefined();

    const before = s.core.audit.stats.syncs;
    const w = await put(s, "dur-a");
    expect(w.statusCode).toBe(204);
    // The request entry (before the handler) and the response entry (before the reply) each waited for a sync.
    expect(s.core.audit.stats.syncs).toBeGreaterThanOrEqual(before + 2);
  });

  it("with audit.sync_reads: true, a read's reply also waits for the sync", async () => {
    const { server: s, log } = await start(true);
    await get(s); // settle the first sync
    const before = s.core.audit.stats.syncs;
    const r = await get(s);
    expect(r.statusCode).toBe(200);
    expect(s.core.audit.stats.syncs).toBeGreaterThan(before);
    expect(entryFor(log, (r.json() as { request_id: string }).request_id)).toBeDefined();
  });
});
