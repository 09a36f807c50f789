import { X509Certificate, randomBytes } from "node:crypto";
import {
  accessSync,
  constants as fsConstants,
  existsSync,
  lstatSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import Database from "better-sqlite3";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import type { FastifyInstance } from "fastify";
import { AuditLog, auditMigrations, readAuditAnchor, writeAuditAnchor } from "../audit/index.js";
import { authMigrations, authRoutes, Authorizer, PolicyStore, TokenStore, TokenTidy } from "../auth/index.js";
import {
  checkClientCaBundle,
  checkServerCertificateDates,
  loadConfig,
  resolvePaths,
  type Config,
} from "../config/index.js";
import { FleetError } from "../errors/index.js";
import {
  createKeyManager,
  defaultPkcs11Modules,
  parseKeyUri,
  requestKeyPolicy,
  type KeyManager,
  type RequestKeyPolicy,
  type Signer,
} from "../keys/index.js";
import { Barrier, SealManager, sealMigrations } from "../seal/index.js";
import { openStore, parseStoreUrl, type MigrationSet, type Store } from "../store/index.js";
import { systemClock, type Clock } from "../util/clock.js";
import { mkdirpSync } from "../util/index.js";
import { buildApp, type AppDeps } from "./app.js";
import { Metrics } from "./metrics.js";
import { defaultModules } from "./modules.js";
import { sysRoutes } from "./sys-routes.js";
import type { RouteSpec } from "./types.js";

export const VERSION = "0.1.0";

/** What every feature module gets from the core. */
export interface CoreServices {
  readonly config: Readonly<Config>;
  readonly paths: ReturnType<typeof resolvePaths>;
  readonly clock: Clock;
  readonly store: Store;
  readonly barrier: Barrier;
  /** Keys whose software material is encrypted by the barrier (usable while unsealed). */
  readonly keys: KeyManager;
  /** What a key URI in an API request may name (config `keys`); check with requestKeyUri. */
  readonly requestKeyPolicy: RequestKeyPolicy;
  readonly audit: AuditLog;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
}

/** A feature module (pki, devices, secrets, …) plugs into the core through this. */
export interface FeatureModule {
  readonly name: string;
  readonly migrations: MigrationSet;
  routes(core: CoreServices): RouteSpec[];
  /** Called after every unseal (and at start when already unsealed). */
  onUnseal?(core: CoreServices): Promise<void>;
  onSeal?(): Promise<void>;
  stop?(): Promise<void>;
  /** The module that implements response wrapping (X-Vault-Wrap-TTL) provides this. */
  wrapper?(core: CoreServices): NonNullable<AppDeps["wrap"]>;
}

export interface ServerOptions {
  configFile?: string | undefined;
  dev?: boolean;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** Write progress lines (dev banner, listening address). */
  log?: (line: string) => void;
  /** Overrides applied under the file and environment (tests). */
  defaults?: Record<string, unknown>;
  modules?: FeatureModule[];
  /** Dev mode from the CLI: create a root CA on first start and print its fingerprint. */
  devCa?: boolean;
  /**
   * Open an audit log that lost lines the store knows it had (emptied, cut short, replaced) instead of
   * refusing to start; the loss is recorded as the first entry written.
   */
  acceptAuditLoss?: boolean;
  /**
   * How long close() lets requests in progress finish before it drops their connections (default
   * SHUTDOWN_GRACE_MS): a client that stalls half-way through a request cannot hold a shutdown open.
   */
  shutdownGraceMs?: number;
  /**
   * A stop asked for while the server starts (the CLI's SIGTERM or SIGINT): createServer stops at its next
   * step, closes what it opened, removes what it created as discard() does, and rejects with the reason.
   */
  signal?: AbortSignal;
}

/** Default of ServerOptions.shutdownGraceMs. */
export const SHUTDOWN_GRACE_MS = 10_000;

export interface Server {
  readonly app: FastifyInstance;
  readonly core: CoreServices;
  readonly config: Readonly<Config>;
  /** Root token, in dev mode only. */
  readonly devRootToken: string | undefined;
  listen(): Promise<string>;
  close(): Promise<void>;
  /**
   * Ends a start that never listened (the address in use, a stop asked for): closes as close() does and,
   * when this start created data_dir, removes it and whatever else the start created (an audit.path or
   * SQLite file outside it that did not exist before). Once listen() has succeeded it is close().
   */
  discard(): Promise<void>;
}

const devDefaults = {
  data_dir: "./.fleetroot-dev",
  seal: { type: "dev" },
  listen: "127.0.0.1:8200",
};

/** Composes the core from configuration; nothing listens until `listen()`. */
export async function createServer(opts: ServerOptions = {}): Promise<Server> {
  const dev = opts.dev ?? false;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? (() => undefined);
  const config = loadConfig({
    file: opts.configFile,
    env: opts.env ?? process.env,
    defaults: { ...(dev ? devDefaults : {}), ...(opts.defaults ?? {}) },
  });
  if (config.seal.type === "dev" && !dev) {
    throw new FleetError(
      "FR_SEAL_CONFIG",
      'seal type "dev" keeps the root key in plain text and is allowed only with --dev; use shamir or pkcs11',
    );
  }
  checkTls(config);
  // Read before anything is created: a wrong TLS path stops the start with no data directory half made.
  const tls = config.tls ? readTlsFiles(config.tls) : undefined;
  // A stop asked for during the start takes effect between its steps, so no step is cut off half-way.
  const step = () => opts.signal?.throwIfAborted();
  step();
  const paths = resolvePaths(config);
  const made = new StartLeftovers(paths.dataDir, makeDataDir(paths.dataDir), log);
  const modules = opts.modules ?? defaultModules();

  const auditFiles = made.absent([
    paths.auditPath,
    `${paths.auditPath}.lock`,
    `${paths.auditPath}.lock-journal`,
  ]);
  // One process owns a data dir: a second server (a restart racing a stopping one, say) would interleave
  // its audit lines with the first's and break the chain.
  let releaseLock: () => void;
  try {
    releaseLock = lockDataDir(paths.dataDir, paths.auditPath);
  } catch (e) {
    made.remove();
    throw e;
  }
  // Only now: while another server held the audit log, a log missing a moment ago may be that server's.
  made.add(auditFiles);
  // What to close, the last opened first. A start that ends before listening also removes what it made,
  // before the lock goes, so that no other start can be in the data dir meanwhile.
  const cleanup: Array<() => Promise<unknown>> = [];
  const shutdown = async (discard: boolean) => {
    for (const c of cleanup) await c().catch(() => undefined);
    if (discard) made.remove();
    releaseLock();
  };
  try {
    step();
    made.add(made.absent(sqliteFiles(paths.storage)));
    const store = await openStore(paths.storage, {
      migrations: [sealMigrations, authMigrations, auditMigrations, ...modules.map((m) => m.migrations)],
    });
    cleanup.push(() => store.close());
    step();
    const barrier = new Barrier(store, clock);
    const keys = createKeyManager({ protector: barrier });
    const plainKeys = createKeyManager();
    cleanup.unshift(
      () => keys.close(),
      () => plainKeys.close(),
    );

    // The audit key is not under the barrier: unseal attempts on a sealed server are audited too.
    made.add(made.absent(keyFiles(paths.auditKey)));
    const auditSigner = await openOrGenerate(plainKeys, paths.auditKey);
    // The store remembers how far the log reached, so a log emptied, cut short or replaced is noticed.
    const anchor = await readAuditAnchor(store);
    // For /metrics: a monitor that keeps this value sees a log cut back (it goes down across a restart).
    let checkpointSeq = anchor?.seq ?? 0;
    const audit = await AuditLog.open({
      path: paths.auditPath,
      signer: auditSigner,
      checkpointEvery: config.audit.checkpoint_every,
      clock,
      ...(anchor ? { anchor } : {}),
      acceptLoss: opts.acceptAuditLoss ?? false,
      onAnchor: (a) => {
        checkpointSeq = a.seq;
        return writeAuditAnchor(store, a, clock.nowMs()).catch((e: unknown) =>
          log(
            `warning: cannot record the audit log's checkpoint at seq ${a.seq} in the store ` +
              `(${(e as Error)?.message ?? String(e)}); a later checkpoint records it`,
          ),
        );
      },
    });
    cleanup.unshift(() => audit.close());
    if (audit.rotatedFrom !== undefined && anchor) {
      // The new file's first entry links it to the last signed line of the one rotated away.
      await audit.log({
        type: "event",
        event: {
          name: "audit.rotated",
          fields: { previous_file: audit.rotatedFrom, previous_seq: anchor.seq, previous_head: anchor.head },
        },
      });
    }
    if (audit.lossAccepted !== undefined) {
      log(`warning: audit log ${paths.auditPath} lost lines (${audit.lossAccepted}); going on as asked`);
      await audit.log({
        type: "event",
        event: {
          name: "audit.loss_accepted",
          fields: {
            recorded_seq: anchor?.seq ?? 0,
            recorded_head: anchor?.head ?? "",
            found_seq: audit.lastSeq,
            problem: audit.lossAccepted,
          },
        },
      });
    }
    // Not before: a stop must not come between opening the log and recording a rotation or an accepted loss.
    step();

    const seal = new SealManager({
      store,
      barrier,
      config: config.seal,
      clock,
      dev,
      version: VERSION,
      ...(config.seal.type === "pkcs11"
        ? { wrapper: () => keys.openWrapper((config.seal as { key: string }).key) }
        : {}),
    });
    await seal.load();
    step();

    const policies = new PolicyStore({ store, clock });
    const tokens = new TokenStore({ store, protector: barrier, clock });
    const authorizer = new Authorizer({ tokens, policies, clock });
    const core: CoreServices = {
      config,
      paths,
      clock,
      store,
      barrier,
      keys,
      requestKeyPolicy: requestKeyPolicy({
        fileDirs: paths.keyFileDirs,
        pkcs11Modules: config.keys?.pkcs11_modules ?? defaultPkcs11Modules(opts.env ?? process.env),
      }),
      audit,
      tokens,
      policies,
    };
    const coreView = barrier.view("core/");
    // Expired tokens are refused at once; this removes their rows (and subtrees) every few minutes.
    const tokenTidy = new TokenTidy(
      tokens,
      async (removed) => {
        await audit.log({ type: "event", event: { name: "auth.token_tidy", fields: { removed } } });
      },
      (e) =>
        log(
          `removing expired tokens failed (tried again in a few minutes): ${(e as Error)?.message ?? String(e)}`,
        ),
    );
    cleanup.unshift(
      () => tokenTidy.stop(),
      async () => {
        for (const m of modules) await m.stop?.().catch(() => undefined);
      },
    );

    // Once per unseal: shares sent in parallel may each see the server go from sealed to unsealed, and
    // every one of them waits for the same run of the hooks.
    let unsealHooks: Promise<void> | undefined;
    const afterUnseal = () =>
      (unsealHooks ??= (async () => {
        const key = await coreView.get("audit-hmac-key");
        audit.setHmacKey(key ?? undefined);
        for (const m of modules) await m.onUnseal?.(core);
        tokenTidy.start();
      })().catch((e: unknown) => {
        unsealHooks = undefined;
        throw e;
      }));
    const afterSeal = async () => {
      unsealHooks = undefined;
      await tokenTidy.stop();
      audit.setHmacKey(undefined);
      for (const m of modules) await m.onSeal?.();
    };

    const routes: RouteSpec[] = [
      ...sysRoutes({
        clock,
        version: VERSION,
        clusterName: "fleetroot",
        status: () => seal.status(),
        init: async (req) => {
          const out = await seal.init(req, async () => {
            await dropTokensOfFailedInit(store);
            await coreView.put("audit-hmac-key", randomBytes(32));
            return tokens.createRootToken();
          });
          if (!seal.status().sealed) await afterUnseal();
          return {
            keys: out.keys,
            keys_base64: out.keys_base64,
            root_token: out.extra.token,
            recovery: config.seal.type !== "shamir",
          };
        },
        submitShare: async (key) => {
          const wasSealed = seal.status().sealed;
          const status = await seal.submitShare(key);
          if (wasSealed && !status.sealed) await afterUnseal();
          return status;
        },
        resetProgress: () => seal.resetProgress(),
        seal: async () => {
          await seal.seal();
          await afterSeal();
        },
        auditHash: (input) => audit.hash(input),
        rotate: () => barrier.rotate(),
        keyStatus: () => barrier.keyStatus(),
      }),
      ...authRoutes({ tokens, policies, clock }),
      ...modules.flatMap((m) => m.routes(core)),
    ];

    let devRootToken: string | undefined;
    if (dev) devRootToken = await devInit(seal, coreView, tokens, paths.dataDir, log, store);
    step();
    if (seal.status().initialized && seal.status().sealed && (await seal.autoUnseal())) {
      log(`unsealed through the ${config.seal.type} seal`);
    }
    if (!seal.status().sealed) await afterUnseal();
    step();

    const metrics = new Metrics();
    const app = buildApp({
      log,
      syncReads: config.audit.sync_reads,
      clock,
      routes,
      isSealed: () => barrier.sealed,
      authorizer,
      audit,
      metrics,
      limits: {
        maxBodyBytes: config.limits.max_body_bytes,
        unsealPerMinute: config.limits.unseal_per_minute,
        loginPerMinute: config.limits.login_per_minute,
      },
      gauges: () => {
        const a = audit.stats;
        const s = store.stats?.();
        return {
          fleetroot_sealed: seal.status().sealed ? 1 : 0,
          fleetroot_audit_lines_total: a.lines,
          fleetroot_audit_syncs_total: a.syncs,
          fleetroot_audit_checkpoint_seq: checkpointSeq,
          ...(s ? { fleetroot_store_commits_total: s.commits, fleetroot_store_syncs_total: s.syncs } : {}),
        };
      },
      ...wrapperOf(modules, core),
      ...(tls ? { fastify: tls } : {}),
    });

    if (dev && opts.devCa && devRootToken && modules.some((m) => m.name === "pki")) {
      await devCa(app, devRootToken, log);
      step();
    }

    let closed = false;
    let listened = false;
    const stop = async (discard: boolean) => {
      if (closed) return;
      closed = true;
      // Idle keep-alive connections go at once (Fastify); a request still in progress after the grace
      // period (a client that stopped sending half-way, say) has its connection dropped.
      const force = setTimeout(
        () => app.server.closeAllConnections(),
        opts.shutdownGraceMs ?? SHUTDOWN_GRACE_MS,
      );
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
      await shutdown(discard && !listened);
    };
    return {
      app,
      core,
      config,
      devRootToken,
      async listen() {
        const [host, port] = splitListen(config.listen);
        await app.listen({ host, port });
        listened = true;
        const addr = app.server.address();
        const actualPort = typeof addr === "object" && addr ? addr.port : port;
        const url = `${config.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;
        log(`Fleetroot ${VERSION} listening on ${url} (pid ${process.pid})`);
        return url;
      },
      close: () => stop(false),
      discard: () => stop(true),
    };
  } catch (e) {
    await shutdown(true);
    throw e;
  }
}

function wrapperOf(modules: FeatureModule[], core: CoreServices): Pick<AppDeps, "wrap"> {
  const m = modules.find((x) => x.wrapper);
  return m?.wrapper ? { wrap: m.wrapper(core) } : {};
}

async function openOrGenerate(keys: KeyManager, uri: string): Promise<Signer> {
  try {
    return await keys.open(uri);
  } catch (e) {
    if (e instanceof FleetError && e.code === "FR_KEY_NOT_FOUND" && uri.startsWith("file:")) {
      return keys.generate(uri, "ecdsa-p256");
    }
    throw e;
  }
}

/**
 * Init runs while the store is not initialized, so any token row is left from an init that failed or was
 * killed after it made its root token: sealed under a keyring that was never stored, handed to nobody.
 */
async function dropTokensOfFailedInit(store: Store): Promise<void> {
  await store.db.withTables<{ auth_token: { token_hash: string } }>().deleteFrom("auth_token").execute();
}

/** Dev mode: initialize on first start with one share and keep the root token in the data dir. */
async function devInit(
  seal: SealManager,
  coreView: ReturnType<Barrier["view"]>,
  tokens: TokenStore,
  dataDir: string,
  log: (line: string) => void,
  store: Store,
): Promise<string> {
  const file = join(dataDir, "root-token");
  if (!seal.status().initialized) {
    const out = await seal.init({ secret_shares: 1, secret_threshold: 1 }, async () => {
      await dropTokensOfFailedInit(store);
      await coreView.put("audit-hmac-key", randomBytes(32));
      return tokens.createRootToken();
    });
    writeFileSync(file, out.extra.token + "\n", { mode: 0o600 });
  }
  const token = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  log("");
  log(
    "WARNING! DEV MODE IS ENABLED. The server runs unsealed with its root key in plain text under " +
      dataDir +
      ".",
  );
  log("Do not run dev mode in production, and do not store real secrets in it.");
  log("");
  log(`Root Token: ${token}`);
  log(`(also in ${file}; export FLEETROOT_TOKEN=${token})`);
  log("");
  return token;
}

/** Dev mode: a root CA on first start (through the API, so it is audited), and its fingerprint on every start. */
async function devCa(app: FastifyInstance, token: string, log: (line: string) => void): Promise<void> {
  const headers = { "x-vault-token": token, "content-type": "application/json" };
  const issuers = await app.inject({ method: "GET", url: "/v1/pki/issuers?list=true", headers });
  const keys =
    issuers.statusCode === 200 ? ((issuers.json() as { data?: { keys?: unknown[] } }).data?.keys ?? []) : [];
  if (keys.length === 0) {
    const made = await app.inject({
      method: "POST",
      url: "/v1/pki/root/generate/internal",
      headers,
      payload: JSON.stringify({ common_name: "Fleetroot Dev Root CA", ttl: "87600h" }),
    });
    if (made.statusCode !== 200) {
      log(`(could not create the dev CA: ${made.statusCode} ${made.body})`);
      return;
    }
  }
  const ca = await app.inject({ method: "GET", url: "/v1/pki/ca" });
  if (ca.statusCode === 200) {
    const fp = new X509Certificate(ca.rawPayload).fingerprint256;
    log(`Dev CA (pki/ca) SHA-256 fingerprint: ${fp}`);
    log("");
  }
}

/**
 * Takes the data dir's lock (`fleetroot.lock`, an exclusive SQLite lock the kernel drops when the process
 * dies, so a kill -9 leaves no stale lock) and the audit log's (lockAuditLog). Refuses with FR_AUDIT_FILE
 * while another server holds either, and with FR_CONFIG_INVALID, naming the cause, when the directory
 * cannot be written (such as read-only).
 */
function lockDataDir(dir: string, auditPath: string): () => void {
  const file = join(dir, "fleetroot.lock");
  let db: Database.Database;
  try {
    db = exclusiveLock(file);
  } catch (e) {
    if ((e as { code?: string }).code === "SQLITE_BUSY") {
      throw new FleetError(
        "FR_AUDIT_FILE",
        `data_dir ${dir} (audit log ${auditPath}) is in use by another Fleetroot server process ` +
          `(${file} is locked); stop that server first, or give this one its own data_dir`,
        { cause: e },
      );
    }
    let why = (e as Error).message;
    try {
      accessSync(dir, fsConstants.W_OK);
    } catch (a) {
      why = (a as Error).message;
    }
    throw new FleetError(
      "FR_CONFIG_INVALID",
      `data_dir ${dir} cannot be written (${why}); the server needs a writable data_dir ` +
        "(a read-only copy or mount cannot be served)",
      { cause: e },
    );
  }
  const data = db;
  let audit: Database.Database | undefined;
  try {
    audit = lockAuditLog(auditPath);
  } catch (e) {
    data.close();
    throw e;
  }
  return () => {
    if (audit?.open) audit.close();
    if (data.open) data.close();
  };
}

/**
 * The audit log's own lock, `<audit path>.lock`: two servers with different data dirs but one audit.path
 * would interleave their lines and break the chain. A directory that is missing or cannot be written is
 * left to AuditLog.open, which names the problem.
 */
function lockAuditLog(auditPath: string): Database.Database | undefined {
  const file = `${auditPath}.lock`;
  try {
    return exclusiveLock(file);
  } catch (e) {
    if ((e as { code?: string }).code !== "SQLITE_BUSY") return undefined;
    throw new FleetError(
      "FR_AUDIT_FILE",
      `the audit log ${auditPath} is in use by another Fleetroot server process (${file} is locked); ` +
        "give each server its own audit.path",
      { cause: e },
    );
  }
}

/** An exclusive SQLite lock on `file`, held until the handle is closed; the kernel drops it if the process dies. */
function exclusiveLock(file: string): Database.Database {
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("CREATE TABLE IF NOT EXISTS lock (pid INTEGER)");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Creates data_dir (0700) when missing and returns the first directory it created (data_dir or a parent),
 * undefined when data_dir was there; a path that cannot be one is a configuration error naming it.
 */
function makeDataDir(dir: string): string | undefined {
  try {
    return mkdirpSync(dir, 0o700);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new FleetError(
      "FR_CONFIG_INVALID",
      `data_dir ${dir} cannot be used as a directory (${why}): it or a parent is a file, or not writable`,
      { cause: e },
    );
  }
}

/**
 * What a start made, so that one ending before it listened leaves nothing behind. Only a start that created
 * data_dir itself removes anything (a data_dir that was there may hold a real install): data_dir with all
 * in it, the files it made outside (audit.path, a SQLite store, the audit key) that did not exist before,
 * and the directories made for them and for data_dir once they are empty.
 */
class StartLeftovers {
  private readonly files: string[] = [];
  private readonly dirs: string[] = [];

  constructor(
    private readonly dataDir: string,
    private readonly firstMade: string | undefined,
    private readonly log: (line: string) => void,
  ) {
    for (let d = dirname(dataDir); firstMade && isWithin(firstMade, d); d = dirname(d)) this.dirs.push(d);
  }

  /** Of `files` outside data_dir, those missing now, with their missing directories; add() them once made. */
  absent(files: readonly string[]): { files: string[]; dirs: string[] } {
    const out: { files: string[]; dirs: string[] } = { files: [], dirs: [] };
    if (!this.firstMade) return out;
    const there = (p: string) => lstatSync(p, { throwIfNoEntry: false }) !== undefined;
    for (const f of files) {
      if (isWithin(this.dataDir, f) || there(f)) continue;
      out.files.push(f);
      for (let d = dirname(f); d !== dirname(d) && !there(d); d = dirname(d)) out.dirs.push(d);
    }
    return out;
  }

  add(made: { files: string[]; dirs: string[] }): void {
    this.files.push(...made.files);
    this.dirs.push(...made.dirs);
  }

  /** Removes what the start made; what cannot be removed is named, and the start's own error still stands. */
  remove(): void {
    if (!this.firstMade) return;
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        this.log(`warning: cannot remove ${what} made by this unfinished start (${why})`);
      }
    };
    for (const f of this.files) attempt(f, () => rmSync(f, { force: true }));
    attempt(this.dataDir, () => rmSync(this.dataDir, { recursive: true, force: true }));
    // Deepest first, and only when empty: something else may have been put in one meanwhile.
    for (const d of [...new Set(this.dirs)].sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(d);
      } catch {
        // not empty, or gone already
      }
    }
  }
}

/** Whether `p` is `dir` or lies under it (by path, as resolved). */
function isWithin(dir: string, p: string): boolean {
  const r = relative(dir, p);
  return r === "" || (r !== ".." && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/** The files of a SQLite store (database, WAL, shared memory, journal); none for PostgreSQL. */
function sqliteFiles(storage: string): string[] {
  try {
    const loc = parseStoreUrl(storage);
    if (loc.dialect !== "sqlite" || loc.file === ":memory:") return [];
    return ["", "-wal", "-shm", "-journal"].map((s) => loc.file + s);
  } catch {
    return []; // openStore names the problem
  }
}

/** The file of a `file:` key URI; none for an HSM key. */
function keyFiles(uri: string): string[] {
  try {
    const k = parseKeyUri(uri);
    return k.scheme === "file" ? [k.path] : [];
  } catch {
    return []; // opening the key names the problem
  }
}

/** The HTTPS options from tls.*; an unreadable file is a configuration error naming its key. */
function readTlsFiles(t: NonNullable<Config["tls"]>): { https: Record<string, unknown> } {
  const read = (key: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new FleetError("FR_CONFIG_INVALID", `tls.${key}: cannot read ${file} (${why})`, { cause: e });
    }
  };
  const cert = read("cert_file", t.cert_file);
  const key = read("key_file", t.key_file);
  const ca = t.client_ca_file ? read("client_ca_file", t.client_ca_file) : undefined;
  if (t.client_ca_file && ca) checkClientCaBundle(t.client_ca_file, ca);
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (e) {
    throw new FleetError(
      "FR_CONFIG_INVALID",
      `tls.cert_file and tls.key_file are not a PEM certificate chain and its key` +
        `${ca ? ", or tls.client_ca_file is not a PEM CA bundle" : ""}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  // The wall clock, not the injected one: clients judge the certificate by theirs.
  checkServerCertificateDates(t.cert_file, cert, new Date());
  return { https: { cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}) } };
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(":");
  return [listen.slice(0, i).replace(/^\[|\]$/g, ""), Number(listen.slice(i + 1))];
}

/** TLS is required on any address that is not loopback. */
function checkTls(config: Config): void {
  const [host] = splitListen(config.listen);
  const loopback = host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (!loopback && !config.tls) {
    throw new FleetError(
      "FR_CONFIG_INVALID",
      `listen ${config.listen} is not a loopback address: set tls.cert_file and tls.key_file`,
    );
  }
}
