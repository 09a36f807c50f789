/**
 * bench/enroll:
 * 1. Join-token enrollments per second over HTTP (a fresh key, CSR and token per device, all made before
 *    timing), next to plain `pki/sign/:role` issuance of the same CSRs in the same run, 16 clients.
 *    Goal: enrollment >= 70% of plain issuance.
 * 2. A registry of 100,000 devices: list/filter latency on the first page and deep pages (keyset paging),
 *    which should stay flat, next to the same queries at 1,000 devices.
 * The server runs in a child process (dev mode, SQLite); autocannon loads it from this one.
 */
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { sql } from "kysely";
import { DeviceRegistry, type DeviceFilter } from "../src/devices/index.js";
import type { Server } from "../src/server/main.js";
import { scratchDir } from "./lib/scratch.js";
import { loaderArgs } from "./lib/serve-child.js";

const DEVICES = Number(process.env.BENCH_ENROLL_DEVICES ?? 3000);
const CONNECTIONS = 16;
const REGISTRY = Number(process.env.BENCH_REGISTRY_DEVICES ?? 100_000);

function p256Signer(key: KeyObject, spki: Uint8Array) {
  return {
    uri: "bench:",
    algorithm: "ecdsa-p256" as const,
    publicKey: spki,
    defaultScheme: "ecdsa-sha256" as const,
    sign: async (data: Uint8Array) => nodeSign("sha256", data, key),
  };
}

async function serve(): Promise<void> {
  const { createServer } = await import("../src/server/main.js");
  const { buildCsr } = await import("../src/pki/index.js");
  const { toPem } = await import("../src/crypto/index.js");
  const dir = scratchDir("fr-bench-enroll-");
  const server = await createServer({
    dev: true,
    env: {},
    defaults: { data_dir: dir, listen: "127.0.0.1:0" },
  });
  const root = server.devRootToken!;
  const call = async (method: "POST" | "GET", url: string, body?: unknown) => {
    const r = await server.app.inject({
      method,
      url: `/v1/${url}`,
      headers: { "x-vault-token": root, "content-type": "application/json" },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    });
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
    return r.json() as { data: Record<string, unknown> };
  };
  await call("POST", "pki/root/generate/internal", { common_name: "Bench Fleet Root", ttl: "87600h" });
  await call("POST", "pki/roles/device", {
    allow_any_name: true,
    enforce_hostnames: false,
    allowed_uri_sans: ["urn:fleetroot:device:*"],
    ttl: "24h",
    key_type: "any",
    server_flag: false,
    client_flag: true,
  });
  await call("POST", "fleet/provisioners/factory", { type: "join-token", role: "device", token_ttl: "1h" });
  const enroll: string[] = [];
  const sign: string[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const spki = publicKey.export({ type: "spki", format: "der" });
    const csr = toPem(await buildCsr([], p256Signer(privateKey, spki)), "CERTIFICATE REQUEST");
    const token = (await call("POST", "fleet/provisioners/factory/tokens", {})).data.token as string;
    enroll.push(JSON.stringify({ provisioner: "factory", token, csr }));
    const named = toPem(
      await buildCsr([{ type: "CN", value: `device-${i}` }], p256Signer(privateKey, spki)),
      "CERTIFICATE REQUEST",
    );
    sign.push(JSON.stringify({ csr: named, common_name: `device-${i}` }));
  }
  const url = await server.listen();
  process.stdout.write(JSON.stringify({ url, token: root, enroll, sign }) + "\n");
  process.stdout.write(JSON.stringify({ registry: await registryLatency(server) }) + "\n");
}

/** Fills the registry straight through the store, then times list queries through the API. */
async function registryLatency(server: Server) {
  type Tables = {
    fleet_device: {
      id: string;
      name: string;
      labels: string;
      status: string;
      method: string | null;
      provisioner: string | null;
      created_at: number;
      updated_at: number;
      last_seen: number | null;
    };
    fleet_device_label: { device_id: string; key: string; value: string };
  };
  // The registry's own list queries (what the API's list route runs), timed without the HTTP and audit
  // layers, whose durable write dominates and varies with the disk, not with the registry size.
  const registry = new DeviceRegistry(server.core.store, server.core.clock);
  const time = async (filter: Partial<DeviceFilter>): Promise<number> => {
    const runs: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const r = await registry.list({ limit: 100, ...filter } as DeviceFilter);
      if (r.devices.length === 0) throw new Error(`no devices for ${JSON.stringify(filter)}`);
      runs.push(performance.now() - t0);
    }
    runs.sort((a, b) => a - b);
    return runs[Math.floor(runs.length / 2)]!;
  };
  const fill = async (from: number, to: number) => {
    const now = Date.now();
    for (let start = from; start < to; start += 500) {
      const rows: Tables["fleet_device"][] = [];
      const labels: Tables["fleet_device_label"][] = [];
      for (let i = start; i < Math.min(to, start + 500); i++) {
        const id = `bench-${String(i).padStart(7, "0")}`;
        const site = `site-${i % 50}`;
        rows.push({
          id,
          name: id,
          labels: JSON.stringify({ site }),
          status: i % 10 === 0 ? "suspended" : "active",
          method: "join-token",
          provisioner: "factory",
          created_at: now,
          updated_at: now,
          last_seen: null,
        });
        labels.push({ device_id: id, key: "site", value: site });
      }
      await server.core.store.transaction(async (trx) => {
        const t = trx.withTables<Tables>();
        await t.insertInto("fleet_device").values(rows).execute();
        await t.insertInto("fleet_device_label").values(labels).execute();
      });
    }
  };
  const queries = (deep: string): Record<string, Partial<DeviceFilter>> => ({
    "first page (100)": {},
    "deep page (after ~90%)": { after: deep },
    "status=suspended": { status: "suspended" },
    "label site=site-7": { labels: { site: "site-7" } },
  });
  const measure = async (n: number) => {
    const out: Record<string, number> = {};
    for (const [k, q] of Object.entries(queries(`bench-${String(Math.floor(n * 0.9)).padStart(7, "0")}`))) {
      out[k] = await time(q);
    }
    return out;
  };
  // Measure steady state: after a bulk load, fold SQLite's write-ahead log back into the database first.
  const settle = async () => {
    if (server.core.store.dialect === "sqlite")
      await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(server.core.store.db);
    await time({}); // warm the statement cache and JIT
  };
  await fill(0, 1000);
  await settle();
  const small = await measure(1000);
  await fill(1000, REGISTRY);
  await settle();
  const large = await measure(REGISTRY);
  return { small, large };
}

async function load(url: string, token: string, bodies: string[]): Promise<number> {
  let i = 0;
  // Timed here, up to the last response: autocannon's own duration (and the moment it reports being done)
  // moves in whole seconds, too coarse for a few thousand requests.
  const started = performance.now();
  let last = started;
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    amount: bodies.length,
    requests: [
      {
        method: "POST",
        headers: { "content-type": "application/json", "x-vault-token": token },
        setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }),
        onResponse: () => {
          last = performance.now();
        },
      },
    ],
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  const seconds = (last - started) / 1000;
  return r.requests.total / seconds;
}

if (process.argv[2] === "serve") {
  process.on("SIGTERM", () => process.exit(0));
  await serve();
} else {
  const child = spawn(process.execPath, [...loaderArgs(), fileURLToPath(import.meta.url), "serve"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const tryLine = () => {
        const l = lines.shift();
        if (l) resolve(JSON.parse(l) as Record<string, unknown>);
        else setTimeout(tryLine, 50);
      };
      child.on("exit", (c) => reject(new Error(`server exited with ${c}`)));
      tryLine();
    });
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let n: number;
    while ((n = buf.indexOf("\n")) >= 0) {
      const l = buf.slice(0, n);
      buf = buf.slice(n + 1);
      if (l.startsWith("{")) lines.push(l);
    }
  });
  try {
    const info = (await next()) as { url: string; token: string; enroll: string[]; sign: string[] };
    const signRate = await load(`${info.url}/v1/pki/sign/device`, info.token, info.sign);
    const enrollRate = await load(`${info.url}/v1/fleet/enroll`, info.token, info.enroll);
    const ratio = enrollRate / signRate;
    console.log(`-- ${DEVICES} devices, fresh P-256 key + CSR + join token each, ${CONNECTIONS} clients`);
    console.log(`plain pki/sign/:role issuance:     ${signRate.toFixed(0)} certs/s`);
    console.log(`join-token enrollment (fleet/enroll): ${enrollRate.toFixed(0)} devices/s`);
    console.log(
      `ratio: ${(ratio * 100).toFixed(1)}% of plain issuance (goal >= 70%) — ${ratio >= 0.7 ? "met" : "NOT met"}`,
    );
    const reg = (await next()).registry as { small: Record<string, number>; large: Record<string, number> };
    console.log(
      `\n-- registry list query latency (median of 50, 100 per page), 1,000 vs ${REGISTRY.toLocaleString("en")} devices`,
    );
    for (const k of Object.keys(reg.small)) {
      const a = reg.small[k]!;
      const b = reg.large[k]!;
      console.log(
        `${k.padEnd(26)} ${a.toFixed(2).padStart(7)} ms   ${b.toFixed(2).padStart(7)} ms   (x${(b / a).toFixed(2)})`,
      );
    }
    console.log("goal: flat (paged, indexed) — the large registry within a small factor of the small one");
  } finally {
    child.kill("SIGTERM");
  }
}
