/**
 * `fleetroot agent run`: keeps the device's certificate fresh. It renews at two thirds of the
 * certificate's lifetime (± 5 % jitter, so a fleet enrolled together does not renew together), over
 * mutual TLS with the current pair (a key file, or a pkcs11: key through OpenSSL's PKCS#11 engine);
 * while the server is unreachable or busy it retries with capped exponential backoff and jitter; a
 * refusal (suspended, decommissioned, revoked) stops it with an error.
 * Time comes from the injected clock and waits from the injected sleep, so tests can move time.
 */
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { type KeyAlgorithm, createKeyManager, parseKeyUri } from "../keys/index.js";
import { type Clock, systemClock } from "../util/clock.js";
import { buildDeviceCsr, generateSoftwareKey, softwareSigner } from "./enroll-crypto.js";
import { ServerRefusal, Unreachable, dataOf, postJson } from "./enroll-http.js";
import { type EnrollOutcome, httpOptions, storeIssued, withReload } from "./enroll.js";
import {
  type AgentConfig,
  type Pair,
  type PairState,
  type WriteHooks,
  cleanLeftovers,
  readConfig,
  readPair,
} from "./files.js";
import { postJsonWithPkcs11Key } from "./pkcs11-tls.js";

export interface RunOptions {
  readonly out: string;
  readonly clock?: Clock;
  /** Waits `ms` (tests pass a short real wait and move the clock themselves). */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly log?: (line: string) => void;
  /** Stop after the first successful renewal. */
  readonly once?: boolean;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly signal?: AbortSignal;
  readonly writeHooks?: WriteHooks;
}

/** Longest single wait, so a clock that jumps (suspend/resume, tests) is noticed soon. */
const MAX_WAIT_MS = 60_000;

/** Two thirds of the lifetime, moved by up to ±5 % of it. `r` is uniform in [0, 1). */
export function renewalTime(notBefore: number, notAfter: number, r: number): number {
  const life = Math.max(0, notAfter - notBefore);
  return Math.round(notBefore + (life * 2) / 3 + (r - 0.5) * 0.1 * life);
}

/** Exponential backoff with "equal jitter": half fixed, half random. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, r: number): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (cap / 2) * r);
}

/** Where the current private key is: in memory (a key file) or behind a pkcs11: URI. */
type CurrentKey = { readonly pem: string } | { readonly pkcs11: string };

function currentKey(pair: Pair): CurrentKey {
  if (pair.keyPem !== undefined) return { pem: pair.keyPem };
  const uri = (pair.state.key as { uri: string }).uri;
  const parsed = parseKeyUri(uri);
  return parsed.scheme === "file" ? { pem: readFileSync(parsed.path, "utf8") } : { pkcs11: uri };
}

/** The CSR for the renewal and the key material for the pair it yields. */
async function renewalCsr(
  cfg: AgentConfig,
  pair: Pair,
  current: CurrentKey,
): Promise<{ csr: string; newKeyPem: string | undefined; key: PairState["key"] }> {
  if (cfg.rekey) {
    const k = generateSoftwareKey(cfg.rekey as KeyAlgorithm);
    return { csr: await buildDeviceCsr(k.signer), newKeyPem: k.pem, key: "file" };
  }
  if ("pem" in current) {
    const priv = createPrivateKey(current.pem);
    return {
      csr: await buildDeviceCsr(softwareSigner(priv, algorithmOf(priv))),
      newKeyPem: pair.keyPem,
      key: pair.state.key,
    };
  }
  // The key stays in its token: the CSR is signed there. The KeyManager is closed before the TLS
  // helper opens the same token (pkcs11-tls.ts).
  const keys = createKeyManager();
  try {
    const csr = await buildDeviceCsr(await keys.open(current.pkcs11));
    return { csr, newKeyPem: undefined, key: pair.state.key };
  } finally {
    await keys.close();
  }
}

/**
 * One renewal over mutual TLS with the current pair; writes the new pair atomically. A key in a file
 * is the TLS client key directly; a pkcs11: key is used through OpenSSL's PKCS#11 engine.
 */
export async function renewOnce(out: string, cfg: AgentConfig, hooks?: WriteHooks): Promise<EnrollOutcome> {
  const pair = await readPair(out);
  const current = currentKey(pair);
  const { csr, newKeyPem, key } = await renewalCsr(cfg, pair, current);
  const http = { ...httpOptions(cfg), clientCert: pair.certPem };
  const res =
    "pem" in current
      ? await postJson({ ...http, clientKey: current.pem }, "fleet/renew", { csr })
      : await postJsonWithPkcs11Key(http, "fleet/renew", { csr }, current.pkcs11);
  const outcome = await storeIssued(out, dataOf(res), newKeyPem, key, hooks);
  return cfg.reloadCmd ? withReload(outcome, cfg.reloadCmd) : outcome;
}

function algorithmOf(k: ReturnType<typeof createPrivateKey>): KeyAlgorithm {
  if (k.asymmetricKeyType === "ed25519") return "ed25519";
  if (k.asymmetricKeyType === "ec")
    return k.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "ecdsa-p384" : "ecdsa-p256";
  return (k.asymmetricKeyDetails?.modulusLength ?? 2048) >= 3072 ? "rsa-3072" : "rsa-2048";
}

export async function runAgent(o: RunOptions): Promise<void> {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? Math.random;
  const sleep =
    o.sleep ??
    ((ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        o.signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      }));
  const log = o.log ?? (() => undefined);
  const { baseMs, maxMs } = o.backoff ?? { baseMs: 2_000, maxMs: 5 * 60_000 };
  await cleanLeftovers(o.out);
  const cfg = await readConfig(o.out);
  let attempt = 0;
  const jitter = new Map<string, number>();
  while (!o.signal?.aborted) {
    const pair = await readPair(o.out);
    if (!jitter.has(pair.state.serial)) jitter.set(pair.state.serial, random());
    const due = renewalTime(pair.state.notBefore, pair.state.notAfter, jitter.get(pair.state.serial)!);
    const now = clock.now().getTime();
    if (now < due) {
      await sleep(Math.min(due - now, MAX_WAIT_MS));
      continue;
    }
    try {
      const r = await renewOnce(o.out, cfg, o.writeHooks);
      log(`renewed: serial ${r.serial}, valid until ${new Date(r.notAfter).toISOString()}`);
      if (r.reloadError) log(r.reloadError);
      if (o.once) return;
      jitter.clear(); // one entry per serial would grow for as long as the daemon runs
      jitter.set(r.serial, random());
      if (clock.now().getTime() < renewalTime(r.notBefore, r.notAfter, jitter.get(r.serial)!)) {
        attempt = 0;
        continue;
      }
      // Due again at once (this clock is ahead of the server's, or the issuer capped the lifetime):
      // renewing straight away would hammer the server, so wait as after a failure.
      const wait = backoffDelay(attempt++, baseMs, maxMs, random());
      log(
        `the new certificate (valid ${new Date(r.notBefore).toISOString()} to ${new Date(r.notAfter).toISOString()}) ` +
          `is already due for renewal: check this device's clock; renewing again in ${Math.round(wait / 1000)}s`,
      );
      await sleep(wait);
    } catch (e) {
      // Only an unreachable or busy server is worth retrying; a refusal or a local fault is not.
      if (!(e instanceof Unreachable || (e instanceof ServerRefusal && e.retryable))) throw e;
      const wait = backoffDelay(attempt++, baseMs, maxMs, random());
      log(`renewal failed (${(e as Error).message}); retrying in ${Math.round(wait / 1000)}s`);
      await sleep(wait);
    }
  }
}
