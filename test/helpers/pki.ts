/**
 * PKI test helpers: CSRs and keys made by openssl (a real peer, so requests are not shaped by our own
 * encoder), bounded runs of openssl/certtool, and a dev server with a root + issuing intermediate.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { type TestServer, startTestServer } from "./server.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
}

/** Runs a peer tool, bounded to 30 s; `out` is stdout + stderr. */
export function run(cmd: string, args: string[], input?: string | Buffer): RunResult {
  const r = spawnSync(cmd, args, { input, timeout: 30_000 });
  if (r.error)
    throw new Error(`${cmd} failed to start: ${r.error.message} (install it: scripts/install-test-deps.sh)`);
  const stdout = r.stdout.toString();
  const stderr = r.stderr.toString();
  return { code: r.status ?? -1, stdout, stderr, out: stdout + stderr };
}

/** Like `run`, without blocking the event loop (for peers that call back into an in-process server). */
export function runAsync(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} failed to start: ${e.message} (install it: scripts/install-test-deps.sh)`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, out: stdout + stderr });
    });
  });
}

export const tempDir = (prefix = "fr-pki-"): string => mkdtempSync(join(tmpdir(), prefix));

export interface CsrFiles {
  csr: string;
  keyFile: string;
  csrFile: string;
}

/**
 * A CSR made by `openssl req`. `key` is an openssl -newkey spec ("ec" for P-256, "rsa:2048", "ed25519",
 * "ec:secp384r1"); `addext` are -addext values (subjectAltName=…, extendedKeyUsage=…, basicConstraints=…).
 */
export function opensslCsr(
  dir: string,
  name: string,
  opts: { subj?: string; key?: string; addext?: string[] } = {},
): CsrFiles {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const key = opts.key ?? "ec";
  const newkey =
    key === "ec"
      ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
      : key.startsWith("ec:")
        ? ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${key.slice(3)}`]
        : ["-newkey", key];
  const r = run("openssl", [
    "req",
    "-new",
    ...newkey,
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    csrFile,
    "-subj",
    opts.subj ?? "/CN=device.fleet.example",
    ...(opts.addext ?? []).flatMap((e) => ["-addext", e]),
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.out}`);
  return { csr: readFileSync(csrFile, "utf8"), keyFile, csrFile };
}

export function write(dir: string, name: string, content: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

export interface PkiServer {
  t: TestServer;
  token: string;
  call(method: string, path: string, body?: unknown): ReturnType<TestServer["call"]>;
}

/** A dev-mode test server (unsealed, root token) on `storage`. */
export async function startPkiServer(
  storage: string,
  opts: Parameters<typeof startTestServer>[1] = {},
): Promise<PkiServer> {
  const t = await startTestServer(storage, { dev: true, seal: { type: "dev" }, log: () => {}, ...opts });
  const token = t.server.devRootToken as string;
  // light-my-request knows no LIST verb: send Vault's GET ?list=true form.
  const call: PkiServer["call"] = (method, path, body) =>
    method === "LIST"
      ? t.call("GET", `${path}${path.includes("?") ? "&" : "?"}list=true`, body, token)
      : t.call(method, path, body, token);
  return { t, token, call };
}

/** Root + intermediate (signed by the root, made default) + a role "device", through the API. */
export async function setupHierarchy(
  s: PkiServer,
  opts: { rootKeyRef?: string; intermediateKeyRef?: string; role?: Record<string, unknown> } = {},
): Promise<{
  rootId: string;
  intermediateId: string;
  rootPem: string;
  intermediatePem: string;
  chainPem: string;
}> {
  const root = await s.call("POST", "pki/root/generate/internal", {
    common_name: "Fleet Test Root",
    issuer_name: "root",
    ttl: "87600h",
    ...(opts.rootKeyRef ? { key_ref: opts.rootKeyRef } : {}),
  });
  expect(root.statusCode, root.body).toBe(200);
  const inter = await s.call("POST", "pki/intermediate/generate/internal", {
    common_name: "Fleet Test Issuing CA",
    issuer_name: "issuing",
    ...(opts.intermediateKeyRef ? { key_ref: opts.intermediateKeyRef } : {}),
  });
  expect(inter.statusCode, inter.body).toBe(200);
  const signed = await s.call("POST", "pki/root/sign-intermediate", {
    csr: inter.json().data.csr,
    ttl: "43800h",
    max_path_length: 0,
  });
  expect(signed.statusCode, signed.body).toBe(200);
  const sd = signed.json().data;
  // The signed intermediate is on record like any issued certificate (listings, revocation).
  const listed = await s.call("GET", "pki/certs?list=true");
  expect(listed.json().data.key_info[sd.serial_number], listed.body).toMatchObject({
    subject: "CN=Fleet Test Issuing CA",
  });
  const set = await s.call("POST", "pki/intermediate/set-signed", {
    certificate: sd.certificate + sd.issuing_ca,
  });
  expect(set.statusCode, set.body).toBe(200);
  const intermediateId = set.json().data.issuer_id as string;
  expect((await s.call("POST", "pki/config/issuers", { default: intermediateId })).statusCode).toBe(200);
  const role = await s.call("POST", "pki/roles/device", {
    allowed_domains: ["fleet.example"],
    allow_subdomains: true,
    allowed_uri_sans: ["spiffe://fleet.example/*"],
    allowed_common_names: ["/fleet/*"],
    max_ttl: "720h",
    ...(opts.role ?? {}),
  });
  expect(role.statusCode, role.body).toBe(200);
  return {
    rootId: root.json().data.issuer_id,
    intermediateId,
    rootPem: root.json().data.certificate,
    intermediatePem: sd.certificate,
    chainPem: sd.certificate + sd.issuing_ca,
  };
}
