/**
 * bench/auth: token-authenticated no-op requests per second through Fleetroot's full pipeline (token
 * lookup, ACL check, audit request + response entries, durable) next to a bare Fastify JSON route, both
 * served by a child process and loaded by autocannon from this one, in the same run. Goal: >= 60%.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 6);
const CONNECTIONS = 64;

async function serve(kind: "bare" | "fleetroot"): Promise<void> {
  if (kind === "bare") {
    const { default: Fastify } = await import("fastify");
    const app = Fastify({ logger: false });
    app.get("/v1/bench/noop", async () => ({ ok: true }));
    await app.listen({ host: "127.0.0.1", port: 0 });
    const addr = app.server.address() as { port: number };
    process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${addr.port}/v1/bench/noop` }) + "\n");
    return;
  }
  const { createServer } = await import("../src/server/main.js");
  const { envelope } = await import("../src/server/types.js");
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-auth-"));
  const server = await createServer({
    dev: true,
    env: {},
    defaults: { data_dir: dir, listen: "127.0.0.1:0" },
    modules: [
      {
        name: "bench",
        migrations: {},
        routes: () => [
          {
            method: "GET",
            url: "/v1/bench/noop",
            auth: "token",
            handler: async () => envelope({ ok: true }),
          },
        ],
      },
    ],
  });
  const root = server.devRootToken!;
  const put = await server.app.inject({
    method: "PUT",
    url: "/v1/sys/policies/acl/bench",
    headers: { "x-vault-token": root, "content-type": "application/json" },
    payload: JSON.stringify({
      policy: 'path "bench/noop" { capabilities = ["read"] }\npath "secret/*" { capabilities = ["read"] }',
    }),
  });
  if (put.statusCode !== 204) throw new Error(`policy write failed: ${put.body}`);
  const tok = await server.app.inject({
    method: "POST",
    url: "/v1/auth/token/create",
    headers: { "x-vault-token": root, "content-type": "application/json" },
    payload: JSON.stringify({ policies: ["bench"], ttl: "1h" }),
  });
  const token = (tok.json() as { auth: { client_token: string } }).auth.client_token;
  const url = await server.listen();
  process.stdout.write(JSON.stringify({ url: `${url}/v1/bench/noop`, token }) + "\n");
}

async function measure(kind: "bare" | "fleetroot"): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "serve", kind], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const info = await new Promise<{ url: string; token?: string }>((resolve, reject) => {
      let buf = "";
      child.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const line = buf.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve(JSON.parse(line) as { url: string; token?: string });
      });
      child.on("exit", (c) => reject(new Error(`${kind} server exited with ${c}`)));
    });
    const headers: Record<string, string> = info.token ? { "x-vault-token": info.token } : {};
    // Warm up, then measure.
    await autocannon({ url: info.url, connections: CONNECTIONS, duration: 1, headers });
    const r = await autocannon({ url: info.url, connections: CONNECTIONS, duration: DURATION_S, headers });
    if (r.non2xx > 0 || r.errors > 0)
      throw new Error(`${kind}: ${r.non2xx} non-2xx responses, ${r.errors} errors`);
    return r.requests.average;
  } finally {
    child.kill("SIGTERM");
  }
}

if (process.argv[2] === "serve") {
  process.on("SIGINT", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  await serve(process.argv[3] as "bare" | "fleetroot");
} else {
  const bare = await measure("bare");
  const fleet = await measure("fleetroot");
  const ratio = fleet / bare;
  console.log(`bare Fastify route:                 ${bare.toFixed(0)} req/s`);
  console.log(`token-authenticated, audited no-op: ${fleet.toFixed(0)} req/s`);
  console.log(
    `ratio: ${(ratio * 100).toFixed(1)}% of the bare route (goal >= 60%) — ${ratio >= 0.6 ? "met" : "NOT met"}`,
  );
  console.log(`(${CONNECTIONS} connections, ${DURATION_S} s each, server in a child process, same machine)`);
}
