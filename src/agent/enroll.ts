/**
 * `fleetroot agent enroll`: makes (or opens) the device key, builds a CSR, gathers the proof the
 * provisioner wants, and writes the issued pair into the output directory atomically (files.ts).
 * The private key never leaves the device: only the CSR and the proof are sent.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fromPem } from "../crypto/index.js";
import { popMessage, psaBinding } from "../enroll/index.js";
import { fail } from "../errors/index.js";
import { type KeyAlgorithm, type KeyManager, type Signer, createKeyManager } from "../keys/index.js";
import { buildDeviceCsr, generateSoftwareKey } from "./enroll-crypto.js";
import { type AgentHttpOptions, dataOf, postJson } from "./enroll-http.js";
import {
  type AgentConfig,
  type PairState,
  prepareOutDir,
  readConfig,
  writeConfig,
  writePair,
} from "./files.js";
import { runInProcessGroup, runReloadHook } from "./run-hook.js";

export type EnrollProof =
  | { readonly type: "token"; readonly token: string }
  | { readonly type: "key"; readonly uri: string }
  | { readonly type: "idevid"; readonly certFile: string; readonly keyUri: string }
  | { readonly type: "psa"; readonly tokenCmd: string };

export interface EnrollOptions {
  readonly server: string;
  readonly provisioner: string;
  readonly out: string;
  readonly proof: EnrollProof;
  readonly caCert?: string | undefined;
  readonly deviceId?: string | undefined;
  readonly keyAlgorithm?: KeyAlgorithm | undefined;
  readonly reloadCmd?: string | undefined;
  /** Key algorithm for a fresh key at each renewal; absent keeps the key. */
  readonly rekey?: KeyAlgorithm | undefined;
  readonly keys?: KeyManager | undefined;
}

export interface EnrollOutcome {
  readonly deviceId: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly dir: string;
  /** Set when the reload command failed (the new pair is in place all the same). */
  readonly reloadError?: string;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

export function httpOptions(cfg: Pick<AgentConfig, "server" | "caCert">): AgentHttpOptions {
  return { server: cfg.server, ...(cfg.caCert ? { ca: readFileSync(cfg.caCert) } : {}) };
}

export async function enrollDevice(o: EnrollOptions): Promise<EnrollOutcome> {
  // Before the proof is spent: a join token works once, and an identity the agent cannot store is lost.
  const undoOutDir = await prepareOutDir(o.out);
  const keys = o.keys ?? createKeyManager();
  let stored = false;
  try {
    const cfg: AgentConfig = {
      server: o.server,
      provisioner: o.provisioner,
      ...(o.caCert ? { caCert: path.resolve(o.caCert) } : {}),
      ...(o.reloadCmd ? { reloadCmd: o.reloadCmd } : {}),
      ...(o.rekey ? { rekey: o.rekey } : {}),
    };
    const http = httpOptions(cfg);
    let signer: Signer;
    let keyPem: string | undefined;
    let keyState: PairState["key"] = "file";
    if (o.proof.type === "key") {
      signer = await keys.open(o.proof.uri);
      keyState = { uri: o.proof.uri };
    } else {
      const k = generateSoftwareKey(o.keyAlgorithm ?? "ecdsa-p256");
      signer = k.signer;
      keyPem = k.pem;
    }
    const csr = await buildDeviceCsr(signer);
    const csrDer = fromPem(csr, "CERTIFICATE REQUEST").der;
    const body: Record<string, unknown> = {
      provisioner: o.provisioner,
      csr,
      ...(o.deviceId ? { device_id: o.deviceId } : {}),
    };
    const nonce = async () => {
      const n = String(dataOf(await postJson(http, "fleet/enroll/nonce", {})).nonce ?? "");
      body.nonce = n;
      return Buffer.from(n, "base64url");
    };
    switch (o.proof.type) {
      case "token":
        body.token = o.proof.token;
        break;
      case "key": {
        const n = await nonce();
        body.signature = b64(await signer.sign(popMessage(n, csrDer)));
        body.signature_scheme = signer.defaultScheme;
        break;
      }
      case "idevid": {
        const n = await nonce();
        const idev = await keys.open(o.proof.keyUri);
        body.chain = readFileSync(o.proof.certFile, "utf8");
        body.signature = b64(await idev.sign(popMessage(n, csrDer)));
        body.signature_scheme = idev.defaultScheme;
        break;
      }
      case "psa": {
        const n = await nonce();
        body.attestation_token = await psaTokenFromCommand(o.proof.tokenCmd, psaBinding(n, signer.publicKey));
        break;
      }
    }
    const d = dataOf(await postJson(http, "fleet/enroll", body));
    const outcome = await storeIssued(o.out, d, keyPem, keyState);
    stored = true;
    await writeConfig(o.out, cfg);
    return o.reloadCmd ? await withReload(outcome, o.reloadCmd) : outcome;
  } finally {
    if (!stored) await undoOutDir();
    if (!o.keys) await keys.close();
  }
}

/** Writes an enroll/renew answer as the new current pair. */
export async function storeIssued(
  out: string,
  d: Record<string, unknown>,
  keyPem: string | undefined,
  key: PairState["key"],
  hooks?: Parameters<typeof writePair>[2],
): Promise<EnrollOutcome> {
  const cert = d.certificate;
  if (typeof cert !== "string") fail("FR_AGENT_STATE", "the server's answer holds no certificate");
  const chain = Array.isArray(d.ca_chain) ? (d.ca_chain as string[]) : [];
  const state: PairState = {
    deviceId: String(d.device_id),
    serial: String(d.serial_number),
    notBefore: Date.parse(String(d.not_before)),
    notAfter: Number(d.expiration) * 1000,
    key,
  };
  const dir = await writePair(out, { certPem: cert, chainPem: chain.join(""), keyPem, state }, hooks);
  const { deviceId, serial, notBefore, notAfter } = state;
  return { deviceId, serial, notBefore, notAfter, dir };
}

/** Runs the reload command for a pair just stored; a failure is reported in the outcome, not thrown. */
export async function withReload(outcome: EnrollOutcome, cmd: string): Promise<EnrollOutcome> {
  const h = await runReloadHook(cmd, outcome.dir);
  return h.ok ? outcome : { ...outcome, reloadError: `the reload command failed: ${h.output}` };
}

/** What a PSA token command may print (the token) and what of its stderr is kept for the error. */
const MAX_TOKEN_OUTPUT = 64 * 1024;
const MAX_STDERR = 4 * 1024;

/**
 * Runs the operator's PSA token command with FLEETROOT_PSA_CHALLENGE set to the hex challenge the
 * token's nonce claim must carry; its standard output is the token (raw CBOR or base64 text).
 * As the reload hook (run-hook.ts), the command runs in its own process group and the whole group is
 * killed (SIGKILL) at the timeout, so neither a command that ignores SIGTERM nor the children it left
 * in the background outlive it; a background child holding stdout open does not hold enrollment up.
 */
export async function psaTokenFromCommand(
  cmd: string,
  challenge: Buffer,
  timeoutMs = 30_000,
): Promise<string> {
  const out: Buffer[] = [];
  let outLength = 0;
  let stderr = "";
  let failure: string | undefined;
  const run = runInProcessGroup(
    cmd,
    { ...process.env, FLEETROOT_PSA_CHALLENGE: challenge.toString("hex") },
    timeoutMs,
    {
      stdout: (d) => {
        outLength += d.length;
        if (outLength > MAX_TOKEN_OUTPUT) {
          failure ??= `the PSA token command printed more than ${MAX_TOKEN_OUTPUT / 1024} KiB`;
          run.kill();
        } else out.push(d);
      },
      stderr: (d) => {
        if (stderr.length < MAX_STDERR) stderr += d.toString("utf8").slice(0, MAX_STDERR - stderr.length);
      },
    },
  );
  const r = await run.done;
  const why =
    r.kind === "error"
      ? `the PSA token command could not run (${r.message})`
      : (failure ??
        (r.kind === "timeout"
          ? `the PSA token command timed out after ${timeoutMs / 1000}s`
          : r.code === 0
            ? undefined
            : `the PSA token command failed (${r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`})`));
  if (why !== undefined) {
    const detail = stderr.trim();
    throw new Error(detail ? `${why}: ${detail}` : why);
  }
  const stdout = Buffer.concat(out);
  const text = stdout.toString("latin1").trim();
  return /^[A-Za-z0-9+/=_-]+$/.test(text) && text.length > 0 ? text : stdout.toString("base64");
}

export { readConfig };
