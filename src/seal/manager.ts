import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { combine, split } from "shamir-secret-sharing";
import { FleetError, fail } from "../errors/index.js";
import { parseKeyUri, type KeyWrapper } from "../keys/index.js";
import type { Barrier } from "./barrier.js";
import type { SealTables } from "./migrations.js";
import { parseShare, validateShares } from "./shares.js";
import type { InitRequest, InitResult, SealConfig, SealManagerDeps, SealStatus } from "./types.js";

const SEAL_ID = "seal";
const ROOT_KEY_LEN = 32;

interface StoredSeal {
  readonly type: string;
  readonly n: number;
  readonly t: number;
  readonly storedKey: Buffer | null;
}

/**
 * Guards the barrier's root key with the configured seal and drives init/unseal/seal with Vault's
 * semantics. shamir: the key exists only as shares held by operators; pkcs11: the key is stored wrapped
 * by an HSM key and unwrapped at start; dev: the key is stored as is (dev mode only).
 */
export class SealManager {
  private readonly config: SealConfig;
  private readonly barrier: Barrier;
  private stored: StoredSeal | undefined;
  private round: { nonce: string; shares: Buffer[] } | undefined;
  private initializing = false;

  constructor(private readonly deps: SealManagerDeps) {
    this.config = deps.config;
    this.barrier = deps.barrier;
    if (deps.config.type === "dev" && !deps.dev) {
      fail(
        "FR_SEAL_CONFIG",
        'the "dev" seal stores the root key in plaintext and is only allowed in dev mode',
      );
    }
    if (deps.config.type === "pkcs11") {
      if (!deps.config.key.startsWith("pkcs11:")) {
        fail(
          "FR_SEAL_CONFIG",
          `the pkcs11 seal needs a pkcs11: key URI, got "${deps.config.key.split(":")[0]}:…"`,
        );
      }
      // A malformed URI (bad escape, unknown attribute) stops the start, not only the first init.
      parseKeyUri(deps.config.key);
      if (!deps.wrapper) fail("FR_SEAL_CONFIG", "the pkcs11 seal needs a key wrapper for its HSM key");
    }
  }

  private get db() {
    return this.deps.store.db.withTables<SealTables>();
  }

  /** Reads the seal state at start. A store made with another seal type is FR_SEAL_MISMATCH. */
  async load(): Promise<void> {
    const row = await this.db
      .selectFrom("seal_config")
      .selectAll()
      .where("id", "=", SEAL_ID)
      .executeTakeFirst();
    if (row && row.type !== this.config.type) {
      fail(
        "FR_SEAL_MISMATCH",
        `the store was initialized with the "${row.type}" seal but the configuration says "${this.config.type}"; ` +
          `configure seal type "${row.type}" (seal migration is not supported)`,
      );
    }
    this.stored = row
      ? { type: row.type, n: row.secret_shares, t: row.secret_threshold, storedKey: row.stored_key }
      : undefined;
  }

  status(): SealStatus {
    const s = this.stored;
    return {
      type: this.config.type,
      initialized: s !== undefined,
      sealed: this.barrier.sealed,
      t: s?.t ?? 0,
      n: s?.n ?? 0,
      progress: this.round?.shares.length ?? 0,
      nonce: this.round?.nonce ?? "",
      version: this.deps.version ?? "0.1.0",
      migration: false,
      recovery_seal: this.config.type === "pkcs11",
      storage_type: this.deps.store.dialect === "postgres" ? "postgresql" : "sqlite",
    };
  }

  /**
   * Creates the root key and the barrier keyring, runs afterInit with the barrier unsealed (the server
   * writes its root token there), then stores keyring and seal config in one transaction. If anything
   * fails, neither is stored, barrier entries written meanwhile are removed, and init can be retried.
   */
  async init<T>(req: InitRequest, afterInit: () => Promise<T>): Promise<InitResult<T>> {
    if (this.initializing) fail("FR_ALREADY_INITIALIZED", "initialization is already in progress");
    this.initializing = true;
    try {
      return await this.runInit(req, afterInit);
    } finally {
      this.initializing = false;
    }
  }

  private async runInit<T>(req: InitRequest, afterInit: () => Promise<T>): Promise<InitResult<T>> {
    await this.load();
    if (this.stored || (await this.barrier.isInitialized())) fail("FR_ALREADY_INITIALIZED");
    const { n, t } =
      this.config.type === "shamir"
        ? validateShares(req)
        : this.config.type === "dev"
          ? { n: 1, t: 1 }
          : { n: 0, t: 0 };

    const rootKey = randomBytes(ROOT_KEY_LEN);
    const secrets: Buffer[] = [rootKey];
    try {
      // Everything that can fail for operator reasons (HSM, parameters) happens before anything is stored.
      let storedKey: Buffer | null = null;
      let shares: Buffer[] = [];
      if (this.config.type === "pkcs11") storedKey = await this.wrapChecked(rootKey);
      else if (this.config.type === "dev") storedKey = Buffer.from(rootKey);
      else
        shares =
          n === 1
            ? [Buffer.from(rootKey)]
            : (await split(new Uint8Array(rootKey), n, t)).map((s) => Buffer.from(s));
      secrets.push(...shares);

      // An uninitialized store cannot read any barrier entry: what is there is left from a failed init.
      await this.db.deleteFrom("barrier_entries").execute();
      const prepared = this.barrier.prepareInitialize(rootKey);
      let extra: T;
      try {
        extra = await afterInit();
        await this.deps.store.transaction(async (trx) => {
          await prepared.commit(trx);
          await trx
            .withTables<SealTables>()
            .insertInto("seal_config")
            .values({
              id: SEAL_ID,
              type: this.config.type,
              secret_shares: n,
              secret_threshold: t,
              stored_key: storedKey,
              created_ms: this.deps.clock.now().getTime(),
            })
            .execute();
        });
      } catch (e) {
        prepared.abort();
        await this.db
          .deleteFrom("barrier_entries")
          .execute()
          .catch(() => {});
        // Another node finishing init first shows up as a unique-key violation.
        if (!(e instanceof FleetError) && (await this.barrier.isInitialized().catch(() => false))) {
          fail("FR_ALREADY_INITIALIZED", undefined, { cause: e });
        }
        throw e;
      }
      this.stored = { type: this.config.type, n, t, storedKey };
      this.round = undefined;
      // shamir: the operators now hold the only copies of the root key.
      if (this.config.type === "shamir") this.barrier.seal();
      return {
        keys: shares.map((s) => s.toString("hex")),
        keys_base64: shares.map((s) => s.toString("base64")),
        extra,
      };
    } finally {
      for (const s of secrets) s.fill(0);
    }
  }

  /** Wraps the root key and checks the HSM gives it back, before the only other copy is dropped. */
  private async wrapChecked(rootKey: Buffer): Promise<Buffer> {
    const wrapper: KeyWrapper = await this.deps.wrapper!();
    const wrapped = Buffer.from(await wrapper.wrap(new Uint8Array(rootKey)));
    const back = Buffer.from(await wrapper.unwrap(new Uint8Array(wrapped)));
    const same = back.length === rootKey.length && timingSafeEqual(back, rootKey);
    back.fill(0);
    if (!same) fail("FR_KEY_BACKEND", `the wrap key ${wrapper.uri} does not give back what it wrapped`);
    return wrapped;
  }

  /**
   * Adds one unseal key share (hex or base64). When the threshold is reached the shares are combined
   * and the barrier unsealed; a wrong combination is FR_UNSEAL_FAILED and starts a new round.
   */
  async submitShare(key: string): Promise<SealStatus> {
    const s = this.stored ?? fail("FR_NOT_INITIALIZED", "initialize first (sys/init)");
    if (!this.barrier.sealed) return this.status();
    if (this.config.type !== "shamir") {
      fail(
        "FR_BAD_REQUEST",
        `the ${this.config.type} seal unseals automatically at start and takes no key shares; restart the server to unseal`,
      );
    }
    const share = parseShare(key, s.n === 1 ? ROOT_KEY_LEN : ROOT_KEY_LEN + 1);
    // A round that reached its threshold is being combined and checked: a share arriving meanwhile waits
    // for that outcome instead of opening a new round the unsealed server would keep half-filled.
    if (this.unsealing) {
      await this.unsealing.catch(() => undefined);
      if (!this.barrier.sealed) {
        share.fill(0);
        return this.status();
      }
    }
    const round = (this.round ??= { nonce: randomUUID(), shares: [] });
    if (round.shares.some((x) => timingSafeEqual(x, share))) {
      share.fill(0);
      fail(
        "FR_UNSEAL_SHARE_REUSED",
        `this round already has ${round.shares.length} of ${s.t}; submit a different key`,
      );
    }
    round.shares.push(share);
    if (round.shares.length < s.t) return this.status();

    // Threshold reached: this round ends whatever the outcome.
    this.round = undefined;
    const done = this.unsealWith(s, share, round.shares);
    this.unsealing = done;
    try {
      await done;
    } finally {
      if (this.unsealing === done) this.unsealing = undefined;
    }
    return this.status();
  }

  /** The round's outcome while its shares are combined and checked (see submitShare). */
  private unsealing: Promise<void> | undefined;

  private async unsealWith(s: StoredSeal, share: Buffer, shares: Buffer[]): Promise<void> {
    const round = { shares };
    let rootKey: Buffer | undefined;
    try {
      try {
        rootKey =
          s.n === 1
            ? Buffer.from(share)
            : Buffer.from(await combine(round.shares.map((x) => new Uint8Array(x))));
      } catch (e) {
        fail("FR_UNSEAL_FAILED", "the key shares cannot be combined; start again with valid shares", {
          cause: e,
        });
      }
      await this.barrier.unseal(rootKey).catch((e: unknown) => {
        if (e instanceof FleetError && e.code === "FR_UNSEAL_FAILED") {
          fail("FR_UNSEAL_FAILED", "a key in this round is wrong; start again with valid keys", { cause: e });
        }
        throw e;
      });
    } finally {
      rootKey?.fill(0);
      for (const x of round.shares) x.fill(0);
    }
  }

  resetProgress(): void {
    for (const x of this.round?.shares ?? []) x.fill(0);
    this.round = undefined;
  }

  async seal(): Promise<void> {
    if (!this.stored) fail("FR_NOT_INITIALIZED", "there is nothing to seal before init");
    this.resetProgress();
    this.barrier.seal();
    return Promise.resolve();
  }

  /** pkcs11 and dev: unseals with no operator step. Returns whether the barrier is unsealed afterwards. */
  async autoUnseal(): Promise<boolean> {
    const s = this.stored;
    if (!s) return false;
    if (!this.barrier.sealed) return true;
    if (this.config.type === "shamir" || !s.storedKey) return false;
    let rootKey: Buffer;
    if (this.config.type === "pkcs11") {
      const wrapper = await this.deps.wrapper!();
      rootKey = Buffer.from(await wrapper.unwrap(new Uint8Array(s.storedKey)));
    } else {
      rootKey = Buffer.from(s.storedKey);
    }
    try {
      await this.barrier.unseal(rootKey);
    } finally {
      rootKey.fill(0);
    }
    return true;
  }
}
