/**
 * bench/floors: the CPU that the work every request of a kind must do costs on this machine, with nothing
 * of Fleetroot's around it: the floor under bench/pki's issuance figure and bench/secrets' write figure.
 *  - Issuance: for each certificate OpenSSL (through node:crypto) imports the CSR's public key (with the
 *    point check), verifies the CSR's signature and signs the certificate. Measured with a distinct device
 *    key per CSR, as in a real fleet, next to Fleetroot's own CSR read + verify and raw `crypto.sign`.
 *  - KV write: the SQL of one new version (BEGIN IMMEDIATE, read the key's row, insert the version, update
 *    the key, COMMIT) on raw better-sqlite3, WAL with synchronous=NORMAL as the server runs it and OFF.
 * Prints the CPU per operation (process.cpuUsage around a loop) and what it allows on 2 cores if nothing
 * else ran at all. Bounded: about 15 s.
 */
import Database from "better-sqlite3";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCsr, verifyCsrSignature } from "../src/crypto/csr.js";
import { toPem } from "../src/crypto/pem.js";
import { buildCsr } from "../src/pki/index.js";
import { keySigner } from "./lib/signer.js";

const KEYS = Number(process.env.BENCH_FLOOR_KEYS ?? 2000);

/** CPU µs per call of fn(i) for i in [0, n), after a warm-up pass over the first tenth. */
function cpuPer(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.ceil(n / 10); i++) fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const line = (label: string, value: string) => console.log(`${label.padEnd(60)} ${value}`);

// ------------------------------------------------------------------ issuance
console.log(`-- per certificate, P-256, ${KEYS} distinct device keys`);
const devices = await Promise.all(
  Array.from({ length: KEYS }, async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const csr = await buildCsr([{ type: "CN", value: "d.fleet.example" }], keySigner(privateKey, publicKey));
    return { jwk: publicKey.export({ format: "jwk" }), csrPem: toPem(csr, "CERTIFICATE REQUEST") };
  }),
);
const parsed = devices.map((d) => parseCsr(d.csrPem));
const keys = devices.map((d) => createPublicKey({ key: d.jwk, format: "jwk" }));
const ca = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const tbs = Buffer.alloc(420, 0x5a);

const importUs = cpuPer(KEYS, (i) => createPublicKey({ key: devices[i]!.jwk, format: "jwk" }));
const verifyUs = cpuPer(KEYS, (i) => {
  if (!verify("sha256", parsed[i]!.info, keys[i]!, parsed[i]!.signature)) throw new Error("bad CSR");
});
const signUs = cpuPer(KEYS, () => sign("sha256", tbs, ca));
const fleetCsrUs = cpuPer(KEYS, (i) => verifyCsrSignature(parseCsr(devices[i]!.csrPem)));
const floor = importUs + verifyUs + signUs;
line("OpenSSL: import the CSR's public key (JWK, point checked)", `${importUs.toFixed(1)} µs`);
line("OpenSSL: verify the CSR's ECDSA signature", `${verifyUs.toFixed(1)} µs`);
line("OpenSSL: sign the certificate (raw crypto.sign)", `${signUs.toFixed(1)} µs`);
line("crypto floor per certificate", `${floor.toFixed(1)} µs`);
line("  what it allows on 2 cores with nothing else running", `${(2e6 / floor).toFixed(0)} certs/s`);
line("Fleetroot: read the CSR (PEM, DER pass, key import) + verify", `${fleetCsrUs.toFixed(1)} µs`);

// ------------------------------------------------------------------ KV write SQL
console.log("\n-- one KV v2 version written in SQL (BEGIN IMMEDIATE, select, insert, update, COMMIT)");
const dir = mkdtempSync(join(tmpdir(), "fr-bench-floors-"));
try {
  for (const sync of ["NORMAL", "OFF"]) {
    const db = new Database(join(dir, `kv-${sync}.db`));
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${sync}`);
    db.exec("create table k (mount text, path text, rev integer, blob blob, primary key (mount, path))");
    db.exec(
      "create table v (mount text, path text, version integer, blob blob, primary key (mount, path, version))",
    );
    db.prepare("insert into k values ('m', 'bench', 0, ?)").run(Buffer.alloc(300));
    const sel = db.prepare("select rev, blob from k where mount = ? and path = ?");
    const ins = db.prepare("insert into v values (?, ?, ?, ?)");
    const upd = db.prepare("update k set rev = ?, blob = ? where mount = ? and path = ? and rev = ?");
    const meta = Buffer.alloc(300, 1);
    const body = Buffer.alloc(120, 2);
    let n = 0;
    const us = cpuPer(20_000, () => {
      db.exec("begin immediate");
      const row = sel.get("m", "bench") as { rev: number };
      ins.run("m", "bench", ++n, body);
      upd.run(row.rev + 1, meta, "m", "bench", row.rev);
      db.exec("commit");
    });
    db.close();
    line(`better-sqlite3, WAL, synchronous=${sync}`, `${us.toFixed(1)} µs per version`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log("\n(CPU of this process per operation, one thread; no HTTP, no audit, no barrier encryption)");
