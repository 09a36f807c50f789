/**
 * bench/pki — the issue's Performance section, every figure next to its peer measured in the same run:
 *  1. Issuance over HTTP (P-256 CSRs, 16 concurrent clients; every certificate stored and audited) next to
 *     Debian's `cfssl serve` signing the same CSR without storage. Goal: >= 1.25x cfssl.
 *  2. A complete CRL with 1,000,000 revoked entries: build + sign time and peak memory, next to
 *     `openssl ca -gencrl` on the same set. Goal: >= 3x faster and < 300 MB. Revoking one more with
 *     1,000,000 revoked takes as long as with none.
 *  3. OCSP responses/s at 16 concurrent clients, next to `openssl ocsp` as a responder on the same data and
 *     a bare Fastify route returning a fixed response. Goal: >= 5x openssl and >= 70% of the bare route.
 * Servers run in child processes; autocannon loads them from this process. BENCH_SECONDS (default 8).
 * cfssl: `apt-get install golang-cfssl` (the cfssl part is skipped, and says so, when it is missing).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer as netServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import type { Signer } from "../src/keys/index.js";
import { median } from "./_stats.js";
import { scratchDir } from "./lib/scratch.js";
import { type ServeChild, loaderArgs, startServeChild } from "./lib/serve-child.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const OCSP_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const CONNECTIONS = 16;
const N_REVOKED = Number(process.env.BENCH_CRL_ENTRIES ?? 1_000_000);
const self = fileURLToPath(import.meta.url);

function p256Signer(): Signer & { pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    uri: "bench:p256",
    algorithm: "ecdsa-p256",
    defaultScheme: "ecdsa-sha256",
    publicKey: publicKey.export({ format: "der", type: "spki" }),
    sign: (data) => Promise.resolve(sign("sha256", data, privateKey)),
    pem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = netServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address() as { port: number };
      s.close(() => resolve(a.port));
    });
  });

// ---------------------------------------------------------------- child: servers
async function serve(kind: string): Promise<void> {
  const { toPem } = await import("../src/crypto/index.js");
  const { buildCsr } = await import("../src/pki/index.js");
  if (kind === "bare") {
    const { default: Fastify } = await import("fastify");
    const app = Fastify({ logger: false });
    const body = randomBytes(Number(process.argv[4] ?? 500));
    app.addContentTypeParser("application/ocsp-request", { parseAs: "buffer" }, (_r, b, done) =>
      done(null, b),
    );
    app.post("/ocsp", async (_req, reply) =>
      reply.header("content-type", "application/ocsp-response").send(body),
    );
    await app.listen({ host: "127.0.0.1", port: 0 });
    const addr = app.server.address() as { port: number };
    process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${addr.port}/ocsp` }) + "\n");
    return;
  }
  const { createServer } = await import("../src/server/main.js");
  const dir = scratchDir("fr-bench-pki-");
  const server = await createServer({
    dev: true,
    env: {},
    defaults: { data_dir: dir, listen: "127.0.0.1:0" },
  });
  const token = server.devRootToken as string;
  const call = async (method: string, url: string, body: unknown) => {
    const r = await server.app.inject({
      method: method as "POST",
      url: `/v1/${url}`,
      headers: { "x-vault-token": token, "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.body}`);
    return r.json() as { data: Record<string, unknown> };
  };
  const root = await call("POST", "pki/root/generate/internal", { common_name: "Bench Root", ttl: "87600h" });
  await call("POST", "pki/roles/bench", { allowed_domains: "bench.example", allow_subdomains: true });
  const csr = toPem(
    await buildCsr([{ type: "CN", value: "d.bench.example" }], p256Signer()),
    "CERTIFICATE REQUEST",
  );
  const leaf = await call("POST", "pki/sign/bench", { csr });
  const url = await server.listen();
  process.stdout.write(
    JSON.stringify({ url, token, csr, issuer: root.data.certificate, leaf: leaf.data.certificate, dir }) +
      "\n",
  );
}

type Child = ServeChild<Record<string, string>>;

async function startChild(kind: string, extra: string[] = []): Promise<Child> {
  return startServeChild(self, [kind, ...extra]);
}

async function load(opts: autocannon.Options): Promise<number> {
  await autocannon({ ...opts, connections: CONNECTIONS, duration: 1 });
  const r = await autocannon({ ...opts, connections: CONNECTIONS, duration: SECONDS });
  if (r.non2xx > 0 || r.errors > r.requests.total * 0.01)
    throw new Error(`${opts.url}: ${r.non2xx} non-2xx, ${r.errors} errors of ${r.requests.total}`);
  return r.requests.total / SECONDS;
}

/**
 * A minimal closed-loop client for responders that close every connection (openssl ocsp answers HTTP/1.0
 * and hangs up, which autocannon does not count): CONNECTIONS loops of one request per new connection.
 */
async function closingLoad(url: string, body: Buffer): Promise<number> {
  const http = await import("node:http");
  const once = () =>
    new Promise<boolean>((resolve) => {
      const req = http.request(
        url,
        {
          method: "POST",
          agent: false,
          headers: { "content-type": "application/ocsp-request", "content-length": body.length },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === 200));
        },
      );
      req.on("error", () => resolve(false));
      req.end(body);
    });
  const runFor = async (ms: number) => {
    const end = performance.now() + ms;
    let ok = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end) if (await once()) ok++;
      }),
    );
    return ok;
  };
  await runFor(1000);
  return (await runFor(SECONDS * 1000)) / SECONDS;
}

const line = (label: string, value: string) => console.log(`${label.padEnd(52)} ${value}`);

// ---------------------------------------------------------------- 1. issuance
async function issuance(fleet: Child): Promise<void> {
  console.log("\n-- issuance over HTTP, P-256 CSR, 16 concurrent clients");
  const body = JSON.stringify({ csr: fleet.info.csr });
  const ours = await load({
    url: `${fleet.info.url}/v1/pki/sign/bench`,
    method: "POST",
    headers: { "x-vault-token": fleet.info.token as string, "content-type": "application/json" },
    body,
  });
  line("Fleetroot pki/sign (stored + audited, 1 process)", `${ours.toFixed(0)} certs/s`);
  const cfssl = spawnSync("sh", ["-c", "command -v cfssl"]).status === 0;
  if (!cfssl) {
    line("cfssl serve", "not installed: apt-get install golang-cfssl — ratio not measured");
    return;
  }
  const dir = scratchDir("fr-bench-cfssl-");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "3650",
      "-subj",
      "/CN=cfssl bench CA",
      "-keyout",
      join(dir, "ca-key.pem"),
      "-out",
      join(dir, "ca.pem"),
    ],
    { stdio: "ignore" },
  );
  const port = await freePort();
  const proc = spawn(
    "cfssl",
    [
      "serve",
      "-address",
      "127.0.0.1",
      "-port",
      String(port),
      "-ca",
      join(dir, "ca.pem"),
      "-ca-key",
      join(dir, "ca-key.pem"),
      "-loglevel",
      "5",
    ],
    { stdio: "ignore" },
  );
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const theirs = await load({
      url: `http://127.0.0.1:${port}/api/v1/cfssl/sign`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ certificate_request: fleet.info.csr }),
    });
    line("cfssl serve /api/v1/cfssl/sign (no storage)", `${theirs.toFixed(0)} certs/s`);
    const ratio = ours / theirs;
    line("ratio (goal >= 1.25x)", `${ratio.toFixed(2)}x — ${ratio >= 1.25 ? "met" : "NOT met"}`);
  } finally {
    proc.kill("SIGTERM");
  }
}

// ---------------------------------------------------------------- 2. CRL with 1M entries
async function crlChild(): Promise<void> {
  const { buildCrl, encodeName } = await import("../src/crypto/index.js");
  const { RevokedArena } = await import("../src/pki/index.js");
  const signer = p256Signer();
  const arena = new RevokedArena();
  const now = Date.now();
  const reasons = [undefined, "keyCompromise", "superseded", "cessationOfOperation"] as const;
  const serials: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N_REVOKED; i++) {
    const serial = randomBytes(16);
    serial[0] = (serial[0] as number) & 0x7f || 1;
    const hex = serial.toString("hex");
    if (process.argv[3]) serials.push(hex);
    arena.add(hex, now - (i % 86_400) * 1000, reasons[i % 4], now + 365 * 86_400_000);
  }
  const loadMs = performance.now() - t0;
  const spec = {
    issuerNameDer: encodeName([{ type: "CN", value: "Bench CA" }]),
    issuerSki: Buffer.alloc(20, 1),
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + 86_400_000),
  };
  const t1 = performance.now();
  const der = await buildCrl({ ...spec, crlNumber: 1, entries: [arena.encoded()] }, signer);
  const buildMs = performance.now() - t1;
  // Revoking one more: one append, whatever is already there.
  const small = new RevokedArena();
  const time = (a: InstanceType<typeof RevokedArena>) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++)
      a.add(randomBytes(16).toString("hex").replace(/^./, "1"), now, "keyCompromise", now + 1e10);
    return Number(process.hrtime.bigint() - t) / 1000 / 1000;
  };
  const emptyUs = time(small);
  const fullUs = time(arena);
  if (process.argv[3]) {
    // The same set as an openssl index.txt (V/R status, expiry, revocation time,reason, serial, file, subject).
    const utc = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z";
    const exp = utc(now + 365 * 86_400_000);
    const names = ["unspecified", "keyCompromise", "superseded", "cessationOfOperation"];
    const lines = serials.map(
      (s, i) =>
        `R\t${exp}\t${utc(now - (i % 86_400) * 1000)},${names[i % 4]}\t${s.toUpperCase()}\tunknown\t/CN=d${i}\n`,
    );
    writeFileSync(process.argv[3], lines.join(""));
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    JSON.stringify({ loadMs, buildMs, bytes: der.length, rssMb: rss, emptyUs, fullUs }) + "\n",
  );
}

async function crl(): Promise<void> {
  console.log(`\n-- complete CRL with ${N_REVOKED.toLocaleString("en")} revoked entries`);
  const dir = scratchDir("fr-bench-crl-");
  const index = join(dir, "index.txt");
  // Entries for openssl are written by a separate run so Fleetroot's peak memory is measured without them.
  spawnSync(process.execPath, [...loaderArgs(), self, "crl-child", index], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const out = spawnSync(process.execPath, [...loaderArgs(), self, "crl-child"], { encoding: "utf8" });
  const r = JSON.parse(out.stdout.trim().split("\n").pop() as string) as Record<string, number>;
  line(
    "Fleetroot: build + sign from pre-encoded entries",
    `${(r.buildMs as number).toFixed(0)} ms (${((r.bytes as number) / 1e6).toFixed(1)} MB CRL)`,
  );
  line("Fleetroot: encoding the entries (once, at load)", `${(r.loadMs as number).toFixed(0)} ms`);
  line(
    "Fleetroot: peak RSS of the whole process",
    `${(r.rssMb as number).toFixed(0)} MB (goal < 300 MB) — ${(r.rssMb as number) < 300 ? "met" : "NOT met"}`,
  );
  line(
    "revoke one more (arena append): 0 vs 1M revoked",
    `${(r.emptyUs as number).toFixed(2)} µs vs ${(r.fullUs as number).toFixed(2)} µs`,
  );

  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "3650",
      "-subj",
      "/CN=Bench CA",
      "-keyout",
      join(dir, "ca.key"),
      "-out",
      join(dir, "ca.pem"),
    ],
    { stdio: "ignore" },
  );
  writeFileSync(join(dir, "crlnumber"), "01\n");
  writeFileSync(
    join(dir, "ca.cnf"),
    `[ca]\ndefault_ca=bench\n[bench]\ndatabase=${index}\ncrlnumber=${join(dir, "crlnumber")}\n` +
      `certificate=${join(dir, "ca.pem")}\nprivate_key=${join(dir, "ca.key")}\ndefault_md=sha256\ndefault_crl_days=1\n`,
  );
  const t = spawnSync(
    "/usr/bin/time",
    ["-f", "%e %M", "openssl", "ca", "-gencrl", "-config", join(dir, "ca.cnf"), "-out", join(dir, "o.crl")],
    { encoding: "utf8" },
  );
  const [secs, kb] = (t.stderr.trim().split("\n").pop() ?? "0 0").split(" ").map(Number);
  const osslMs = (secs ?? 0) * 1000;
  line(
    "openssl ca -gencrl (reads index.txt, builds, signs)",
    `${osslMs.toFixed(0)} ms, peak ${((kb ?? 0) / 1024).toFixed(0)} MB${t.status ? ` (exit ${t.status})` : ""}`,
  );
  const speedup = osslMs / (r.buildMs as number);
  const cold = osslMs / ((r.buildMs as number) + (r.loadMs as number));
  line("speed-up, rebuild (goal >= 3x)", `${speedup.toFixed(1)}x — ${speedup >= 3 ? "met" : "NOT met"}`);
  line("speed-up incl. encoding every entry (cold)", `${cold.toFixed(1)}x`);
  console.log("   (cold start from the store additionally reads the revoked rows; not included above)");
}

// ---------------------------------------------------------------- 3. OCSP
async function ocsp(fleet: Child): Promise<void> {
  console.log("\n-- OCSP responses/s, 16 concurrent clients, request without nonce");
  const dir = scratchDir("fr-bench-ocsp-");
  writeFileSync(join(dir, "issuer.pem"), fleet.info.issuer as string);
  writeFileSync(join(dir, "leaf.pem"), fleet.info.leaf as string);
  execFileSync(
    "openssl",
    [
      "ocsp",
      "-issuer",
      join(dir, "issuer.pem"),
      "-cert",
      join(dir, "leaf.pem"),
      "-no_nonce",
      "-reqout",
      join(dir, "req.der"),
    ],
    { stdio: "ignore" },
  );
  const req = (await import("node:fs")).readFileSync(join(dir, "req.der"));
  const opts = (url: string): autocannon.Options => ({
    url,
    method: "POST",
    headers: { "content-type": "application/ocsp-request" },
    body: req,
  });
  // The bare route runs beside Fleetroot and the rounds alternate, so drift in the machine's speed
  // touches both alike; the figures are medians over the rounds.
  const bare = await startChild("bare", ["500"]);
  const oursRounds: number[] = [];
  const bareRounds: number[] = [];
  const shares: number[] = [];
  try {
    for (let i = 0; i < OCSP_ROUNDS; i++) {
      const o = await load(opts(`${fleet.info.url}/v1/pki/ocsp`));
      const b = await load(opts(bare.info.url as string));
      oursRounds.push(o);
      bareRounds.push(b);
      shares.push(o / b);
      line(
        `  round ${i + 1}: Fleetroot / bare`,
        `${o.toFixed(0)} / ${b.toFixed(0)} responses/s (${((o / b) * 100).toFixed(0)}%)`,
      );
    }
  } finally {
    bare.stop();
  }
  const ours = median(oursRounds);
  const bareRate = median(bareRounds);
  line("Fleetroot POST /v1/pki/ocsp (cached response), median", `${ours.toFixed(0)} responses/s`);
  line("bare Fastify route, fixed body, median", `${bareRate.toFixed(0)} responses/s`);

  // openssl ocsp as a responder: the same issuer and leaf, the issuer's key from Fleetroot's data dir is
  // sealed, so openssl gets its own delegated-style setup: a fresh CA + leaf with an index.txt.
  const key = join(dir, "ca.key");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "30",
      "-subj",
      "/CN=ocsp bench CA",
      "-keyout",
      key,
      "-out",
      join(dir, "ca.pem"),
    ],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=leaf",
      "-keyout",
      join(dir, "l.key"),
      "-out",
      join(dir, "l.csr"),
    ],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    [
      "x509",
      "-req",
      "-in",
      join(dir, "l.csr"),
      "-CA",
      join(dir, "ca.pem"),
      "-CAkey",
      key,
      "-CAcreateserial",
      "-days",
      "30",
      "-out",
      join(dir, "l.pem"),
    ],
    { stdio: "ignore" },
  );
  const serial = execFileSync("openssl", ["x509", "-in", join(dir, "l.pem"), "-noout", "-serial"])
    .toString()
    .trim()
    .split("=")[1];
  writeFileSync(join(dir, "index.txt"), `V\t361231000000Z\t\t${serial}\tunknown\t/CN=leaf\n`);
  execFileSync(
    "openssl",
    [
      "ocsp",
      "-issuer",
      join(dir, "ca.pem"),
      "-cert",
      join(dir, "l.pem"),
      "-no_nonce",
      "-reqout",
      join(dir, "req2.der"),
    ],
    { stdio: "ignore" },
  );
  const req2 = (await import("node:fs")).readFileSync(join(dir, "req2.der"));
  const port = await freePort();
  const proc = spawn(
    "openssl",
    [
      "ocsp",
      "-index",
      join(dir, "index.txt"),
      "-port",
      String(port),
      "-rsigner",
      join(dir, "ca.pem"),
      "-rkey",
      key,
      "-CA",
      join(dir, "ca.pem"),
      "-nmin",
      "60",
    ],
    { stdio: "ignore" },
  );
  let theirs = 0;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    theirs = await closingLoad(`http://127.0.0.1:${port}/`, req2);
  } finally {
    proc.kill("SIGTERM");
  }
  line("openssl ocsp responder (closes every connection)", `${theirs.toFixed(0)} responses/s`);
  const vsOpenssl = ours / theirs;
  const vsBare = median(shares);
  line("ratio to openssl (goal >= 5x)", `${vsOpenssl.toFixed(1)}x — ${vsOpenssl >= 5 ? "met" : "NOT met"}`);
  line(
    "share of the bare route, median of the rounds (goal >= 70%)",
    `${(vsBare * 100).toFixed(0)}% — ${vsBare >= 0.7 ? "met" : "NOT met"}`,
  );
}

// ---------------------------------------------------------------- main
const mode = process.argv[2];
if (mode === "serve") {
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
  await serve(process.argv[3] as string);
} else if (mode === "crl-child") {
  await crlChild();
} else {
  const only = process.env.BENCH_PKI_ONLY;
  if (!only || only === "crl") await crl();
  if (!only || only !== "crl") {
    const fleet = await startChild("fleetroot");
    try {
      if (!only || only === "issue") await issuance(fleet);
      if (!only || only === "ocsp") await ocsp(fleet);
    } finally {
      fleet.stop();
    }
  }
  console.log(
    `\n(${SECONDS} s per HTTP measurement after 1 s warm-up; servers in child processes; 2-core machine shared with the load client)`,
  );
  void existsSync;
}
