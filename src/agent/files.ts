/**
 * The agent's output directory. Each key/certificate pair is a generation directory written completely
 * (every file fsynced) before one atomic rename of the `current` symlink makes it live; the previous
 * generation is kept. A process killed at any point leaves `current` pointing at a complete pair: the
 * old one until the rename, the new one after. Leftovers of an interrupted write are removed on the
 * next start.
 *
 *   DIR/agent.json        server, provisioner, CA file, reload hook (written at enrollment)
 *   DIR/current -> gen-N  the live pair: cert.pem, key.pem (or key.uri), chain.pem, state.json
 *   DIR/gen-N-1           the previous pair
 */
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { fail } from "../errors/index.js";
import { syncDirectory, writeNewSynced } from "../util/atomic-write.js";
import { mkdirp } from "../util/index.js";

export interface AgentConfig {
  readonly server: string;
  readonly provisioner: string;
  /** CA bundle that verifies the server's TLS certificate (absolute path), if any. */
  readonly caCert?: string | undefined;
  readonly reloadCmd?: string | undefined;
  /** Key algorithm for fresh keys at renewal (rekey); absent = keep the key. */
  readonly rekey?: string | undefined;
}

export interface PairState {
  readonly deviceId: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** "file" when key.pem holds the key; otherwise the key URI it lives behind. */
  readonly key: "file" | { readonly uri: string };
}

export interface Pair {
  readonly certPem: string;
  readonly chainPem: string;
  /** PKCS#8 PEM for a software key; undefined when the key is behind a URI. */
  readonly keyPem: string | undefined;
  readonly state: PairState;
}

export interface WriteHooks {
  /** Runs after the new generation is complete on disk and before it goes live (tests kill here). */
  beforeSwap?(): void | Promise<void>;
  /** Runs between writing the key and the certificate of the new generation. */
  afterKey?(): void | Promise<void>;
}

const CURRENT = "current";
const GEN = /^gen-(\d+)$/;

export async function writeConfig(dir: string, cfg: AgentConfig): Promise<void> {
  await mkdirp(dir, 0o700);
  const tmp = path.join(dir, `.agent.json.${process.pid}.tmp`);
  await fs.rm(tmp, { force: true });
  await writeNewSynced(tmp, JSON.stringify(cfg, null, 2) + "\n", 0o600);
  await fs.rename(tmp, path.join(dir, "agent.json"));
  await syncDirectory(dir);
}

export async function readConfig(dir: string): Promise<AgentConfig> {
  const file = path.join(dir, "agent.json");
  let cfg: Partial<Record<keyof AgentConfig, unknown>>;
  try {
    cfg = JSON.parse(await fs.readFile(file, "utf8")) as typeof cfg;
  } catch (e) {
    return fail(
      "FR_AGENT_STATE",
      `cannot read ${file}: run \`fleetroot agent enroll\` first (${(e as Error).message})`,
    );
  }
  // Checked now, not hours later when the first renewal falls due.
  const str = (v: unknown) => typeof v === "string" && v !== "";
  const opt = (v: unknown) => v === undefined || str(v);
  const valid =
    cfg !== null &&
    typeof cfg === "object" &&
    str(cfg.server) &&
    URL.canParse(cfg.server as string) &&
    str(cfg.provisioner) &&
    opt(cfg.caCert) &&
    opt(cfg.reloadCmd) &&
    opt(cfg.rekey);
  if (!valid) fail("FR_AGENT_STATE", `${file} is not a valid agent configuration: enroll again`);
  return cfg as AgentConfig;
}

/**
 * Makes sure `dir` can take a new identity before anything is spent on the server (a join token works
 * once): it must be a writable directory that holds no identity yet. Returns an undo that removes the
 * directories this made, as long as they are still empty (for an enrollment that then failed).
 */
export async function prepareOutDir(dir: string): Promise<() => Promise<void>> {
  let created: string | undefined;
  const removed = (d: string) =>
    fs.rmdir(d).then(
      () => true,
      () => false,
    );
  const undo = async () => {
    if (created === undefined) return;
    const top = path.resolve(created);
    for (let d = path.resolve(dir); d.startsWith(top) && (await removed(d)); d = path.dirname(d));
  };
  try {
    created = await mkdirp(dir, 0o700);
    const probe = path.join(dir, `.probe-${process.pid}`);
    await fs.writeFile(probe, "", { mode: 0o600 });
    await fs.rm(probe);
  } catch (e) {
    fail("FR_AGENT_STATE", `${dir} is not a writable directory (${(e as Error).message})`);
  }
  const held = await Promise.all(
    ["agent.json", CURRENT].map((n) =>
      fs.lstat(path.join(dir, n)).then(
        () => n,
        () => undefined,
      ),
    ),
  );
  const name = held.find((n) => n !== undefined);
  if (name)
    fail(
      "FR_AGENT_STATE",
      `${dir} already holds a device identity (${name}): remove it or choose another --out`,
    );
  return undo;
}

function checkState(s: unknown): PairState {
  const o = (s ?? {}) as Record<string, unknown>;
  const key = o.key;
  const keyOk =
    key === "file" ||
    (typeof key === "object" && key !== null && typeof (key as { uri?: unknown }).uri === "string");
  if (
    typeof o.deviceId !== "string" ||
    typeof o.serial !== "string" ||
    !Number.isFinite(o.notBefore) ||
    !Number.isFinite(o.notAfter) ||
    !keyOk
  )
    throw new Error("state.json lacks deviceId, serial, notBefore, notAfter or key");
  return o as unknown as PairState;
}

/** Removes what an interrupted write left behind (temporary generations and links). */
export async function cleanLeftovers(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(".tmp-gen-") || name.startsWith(".current-"))
      await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

async function generations(dir: string): Promise<number[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names
    .flatMap((n) => {
      const m = GEN.exec(n);
      return m ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);
}

/** Writes a pair as a new generation and makes it current atomically; keeps one previous generation. */
export async function writePair(dir: string, pair: Pair, hooks: WriteHooks = {}): Promise<string> {
  await mkdirp(dir, 0o700);
  await cleanLeftovers(dir);
  const gens = await generations(dir);
  const n = (gens[gens.length - 1] ?? 0) + 1;
  const name = `gen-${n}`;
  const tmp = path.join(dir, `.tmp-${name}`);
  await fs.mkdir(tmp, { mode: 0o700 });
  if (pair.keyPem !== undefined) await writeNewSynced(path.join(tmp, "key.pem"), pair.keyPem, 0o600);
  else if (pair.state.key !== "file")
    await writeNewSynced(path.join(tmp, "key.uri"), pair.state.key.uri + "\n", 0o600);
  await hooks.afterKey?.();
  await writeNewSynced(path.join(tmp, "cert.pem"), pair.certPem, 0o644);
  await writeNewSynced(path.join(tmp, "chain.pem"), pair.chainPem, 0o644);
  await writeNewSynced(path.join(tmp, "state.json"), JSON.stringify(pair.state, null, 2) + "\n", 0o644);
  await syncDirectory(tmp);
  await fs.rename(tmp, path.join(dir, name));
  await syncDirectory(dir);
  await hooks.beforeSwap?.();
  // rename(2) over an existing symlink is atomic: readers see the old target or the new one.
  const link = path.join(dir, `.current-${process.pid}`);
  await fs.rm(link, { force: true });
  await fs.symlink(name, link);
  await fs.rename(link, path.join(dir, CURRENT));
  await syncDirectory(dir);
  for (const g of gens.slice(0, -1))
    await fs.rm(path.join(dir, `gen-${g}`), { recursive: true, force: true });
  return path.join(dir, name);
}

/** The live pair; checks the certificate and the key belong together. */
export async function readPair(dir: string): Promise<Pair & { dir: string }> {
  let genDir: string;
  try {
    genDir = path.join(dir, await fs.readlink(path.join(dir, CURRENT)));
  } catch {
    return fail(
      "FR_AGENT_STATE",
      `${dir} holds no current certificate: run \`fleetroot agent enroll\` first`,
    );
  }
  const read = (f: string) => fs.readFile(path.join(genDir, f), "utf8");
  try {
    const state = checkState(JSON.parse(await read("state.json")));
    const certPem = await read("cert.pem");
    const chainPem = await read("chain.pem");
    const keyPem = state.key === "file" ? await read("key.pem") : undefined;
    if (keyPem !== undefined) {
      const certKey = new X509Certificate(certPem).publicKey.export({ format: "der", type: "spki" });
      const key = createPublicKey(createPrivateKey(keyPem)).export({ format: "der", type: "spki" });
      if (!certKey.equals(key)) fail("FR_AGENT_STATE", `${genDir}: the certificate does not match the key`);
    }
    return { dir: genDir, certPem, chainPem, keyPem, state };
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith("FR_")) throw e;
    return fail("FR_AGENT_STATE", `${genDir} is incomplete or unreadable: ${(e as Error).message}`);
  }
}
