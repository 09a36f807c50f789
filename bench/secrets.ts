/**
 * bench/secrets: KV v2 reads and writes per second over HTTP (token auth, ACL, durable audit, barrier
 * encryption, SQLite store), 16 concurrent clients, next to a bare Fastify route returning the same JSON,
 * measured in the same run with servers in child processes. Goals: reads >= 40%, writes >= 20% of the bare
 * route. Prints p50/p99 latency.
 *
 * Each round also loads a reference route on the same Fleetroot server: a token-authenticated POST whose
 * handler stores nothing (token check, ACL, the request entry made durable before the handler and the
 * response entry before the reply, HTTP). It is what every write pays before the KV engine does anything,
 * so its ratio is the ceiling a KV write could reach with free storage.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { median } from "./_stats.js";
import { scratchDir } from "./lib/scratch.js";
import { answerStats, cpuFigure, showCpu, statsOf, type CpuFigure } from "./lib/cpu.js";
import { startServeChild } from "./lib/serve-child.js";

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 4);
const CONNECTIONS = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECRET = { data: { username: "robot-17", password: "correct horse battery staple", port: 5432 } };

interface Info {
  url: string;
  /** Fleetroot only: the reference route (the write pipeline without storage). */
  pipelineUrl?: string;
  token?: string;
  body?: string;
}

async function serve(kind: "bare" | "fleetroot"): Promise<void> {
  if (kind === "bare") {
    const { default: Fastify } = await import("fastify");
    const app = Fastify({ logger: false });
    const reply = {
      request_id: "00000000-0000-4000-8000-000000000000",
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data: { data: SECRET.data, metadata: { created_time: new Date().toISOString(), version: 1 } },
      wrap_info: null,
      warnings: null,
      auth: null,
    };
    app.get("/v1/secret/data/bench", async () => reply);
    app.post("/v1/secret/data/bench", async () => reply);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const addr = app.server.address() as { port: number };
    answerStats();
    process.stdout.write(
      JSON.stringify({ url: `http://127.0.0.1:${addr.port}/v1/secret/data/bench` }) + "\n",
    );
    return;
  }
  const { createServer } = await import("../src/server/main.js");
  const dir = scratchDir("fr-bench-secrets-");
  const { envelope } = await import("../src/server/types.js");
  const { defaultModules } = await import("../src/server/modules.js");
  const server = await createServer({
    dev: true,
    env: {},
    defaults: { data_dir: dir, listen: "127.0.0.1:0" },
    modules: [
      ...defaultModules(),
      {
        name: "bench",
        migrations: {},
        // The reference route: the core's write pipeline with a handler that stores nothing and answers
        // what a KV write answers.
        routes: () => [
          {
            method: "POST",
            url: "/v1/bench/pipeline",
            auth: "token",
            handler: async () =>
              envelope({
                created_time: new Date().toISOString(),
                custom_metadata: null,
                deletion_time: "",
                destroyed: false,
                version: 1,
              }),
          },
        ],
      },
    ],
  });
  const root = server.devRootToken!;
  const call = async (method: "PUT" | "POST", url: string, body: unknown, token = root) => {
    const r = await server.app.inject({
      method,
      url: `/v1/${url}`,
      headers: { "x-vault-token": token, "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
    return r.statusCode === 204 ? {} : (r.json() as Record<string, unknown>);
  };
  await call("PUT", "sys/policies/acl/bench", {
    policy:
      'path "secret/data/bench" { capabilities = ["create", "read", "update"] }\n' +
      'path "bench/pipeline" { capabilities = ["update"] }',
  });
  const tok = await call("POST", "auth/token/create", { policies: ["bench"], ttl: "1h" });
  const token = (tok.auth as { client_token: string }).client_token;
  await call("POST", "secret/data/bench", SECRET, token);
  const url = await server.listen();
  // The parent asks for the sync counters (and the CPU spent) before and after each measurement (load()).
  answerStats(() => {
    const audit = server.core.audit.stats;
    const store = server.core.store.stats?.() ?? { commits: 0, syncs: 0 };
    return { auditSyncs: audit.syncs, walSyncs: store.syncs, commits: store.commits };
  });
  process.stdout.write(
    JSON.stringify({ url: `${url}/v1/secret/data/bench`, pipelineUrl: `${url}/v1/bench/pipeline`, token }) +
      "\n",
  );
}

interface Server {
  info: Info;
  child: ChildProcess;
  stop(): void;
}

async function start(kind: "bare" | "fleetroot"): Promise<Server> {
  const { info, child, stop } = await startServeChild<Info>(fileURLToPath(import.meta.url), [kind], {
    ipc: true,
  });
  return { info, child, stop };
}

interface Figure {
  rps: number;
  p50: number;
  p99: number;
  cpu: CpuFigure;
  note?: string;
}

async function load(server: Server, write: boolean, url = server.info.url): Promise<Figure> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (server.info.token) headers["x-vault-token"] = server.info.token;
  const opts = {
    url,
    connections: CONNECTIONS,
    headers,
    ...(write ? { method: "POST" as const, body: JSON.stringify(SECRET) } : {}),
  };
  await autocannon({ ...opts, duration: 1 });
  const before = await statsOf(server.child);
  const client = process.cpuUsage();
  const r = await autocannon({ ...opts, duration: DURATION_S });
  const after = await statsOf(server.child);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${r.non2xx} non-2xx responses, ${r.errors} errors`);
  const f: Figure = {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpu: cpuFigure(before, after, client, r.requests.total),
  };
  // Fleetroot's group-commit counters: fdatasync calls of the audit file and of SQLite's WAL, commits.
  if (write && after.auditSyncs !== undefined && before.auditSyncs !== undefined && r.requests.total > 0) {
    const per = (n: number) => (n / r.requests.total).toFixed(3);
    const commits = after.commits! - before.commits!;
    f.note =
      `fdatasync per request: audit ${per(after.auditSyncs - before.auditSyncs)}, ` +
      `WAL ${per(after.walSyncs! - before.walSyncs!)}; ` +
      `${commits > 0 ? (r.requests.total / commits).toFixed(1) : "no"} requests per SQLite commit`;
  }
  return f;
}

function show(name: string, f: Figure): void {
  console.log(`${name.padEnd(44)} ${f.rps.toFixed(0).padStart(7)} req/s   p50 ${f.p50} ms   p99 ${f.p99} ms`);
  console.log(`${"".padEnd(46)}${showCpu(f.cpu)}`);
  if (f.note) console.log(`${"".padEnd(46)}${f.note}`);
}

if (process.argv[2] === "serve") {
  process.on("SIGINT", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  await serve(process.argv[3] as "bare" | "fleetroot");
} else {
  // Both servers stay up and the rounds alternate between them, so drift in the machine's speed touches
  // both alike; each goal is judged on the median of the rounds' ratios.
  const bare = await start("bare");
  const fleet = await start("fleetroot");
  const reads: number[] = [];
  const writes: number[] = [];
  const pipelines: number[] = [];
  const readCpu: number[] = [];
  const writeCpu: number[] = [];
  const writeLoop: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const bareRead = await load(bare, false);
      const read = await load(fleet, false);
      const bareWrite = await load(bare, true);
      const write = await load(fleet, true);
      const pipeline = await load(fleet, true, fleet.info.pipelineUrl!);
      console.log(`round ${i + 1}`);
      show("  bare Fastify GET (same JSON)", bareRead);
      show("  Fleetroot KV v2 read (token, ACL, audit)", read);
      show("  bare Fastify POST (same JSON)", bareWrite);
      show("  Fleetroot KV v2 write (+ barrier, new version)", write);
      show("  reference: write pipeline, no storage", pipeline);
      reads.push(read.rps / bareRead.rps);
      readCpu.push(bareRead.cpu.serverUs / read.cpu.serverUs);
      writeCpu.push(bareWrite.cpu.serverUs / write.cpu.serverUs);
      writeLoop.push(write.cpu.loopBusy);
      writes.push(write.rps / bareWrite.rps);
      pipelines.push(pipeline.rps / bareWrite.rps);
    }
  } finally {
    bare.stop();
    fleet.stop();
  }
  const r = median(reads);
  const w = median(writes);
  const pct = (xs: number[]) => xs.map((x) => (x * 100).toFixed(1) + "%").join(", ");
  console.log(
    `reads:  ${(r * 100).toFixed(1)}% of the bare route, median of ${pct(reads)} (goal >= 40%) — ${r >= 0.4 ? "met" : "NOT met"}`,
  );
  console.log(
    `writes: ${(w * 100).toFixed(1)}% of the bare route, median of ${pct(writes)} (goal >= 20%) — ${w >= 0.2 ? "met" : "NOT met"}`,
  );
  const c = median(pipelines);
  console.log(
    `reference: the write pipeline without storage ${(c * 100).toFixed(1)}% of the bare route, median of ${pct(pipelines)} (the most a KV write could reach)`,
  );
  // A server whose event loop is near 100% busy is bound by its CPU per request: the ratio then follows the
  // CPU ratio. A KV write's loop below that waits on fdatasync (16 clients, each waiting on its reply).
  console.log(
    `CPU per request (server process, all threads): the bare GET takes ${(median(readCpu) * 100).toFixed(1)}% of a KV read's, ` +
      `the bare POST ${(median(writeCpu) * 100).toFixed(1)}% of a KV write's; ` +
      `the write's event loop was ${(median(writeLoop) * 100).toFixed(0)}% busy (medians of the rounds)`,
  );
  console.log(
    `(${CONNECTIONS} connections, ${DURATION_S} s per measurement after 1 s warm-up, ${ROUNDS} alternating rounds, servers in child processes, same machine)`,
  );
}
