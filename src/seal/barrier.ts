import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { KeyProtector } from "../keys/types.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/index.js";
import { NonceSource, openValue, sealValue, termOf } from "./aead.js";
import {
  activeTerm,
  decodeKeyring,
  encodeKeyring,
  newKeyring,
  withNewTerm,
  zeroKeyring,
  type Keyring,
} from "./keyring.js";
import type { SealTables } from "./migrations.js";
import { BarrierView } from "./view.js";

/** The keyring's own associated data: it can only be read back as the keyring. */
const KEYRING_AAD = "fleetroot/barrier/keyring";
const KEYRING_ID = "keyring";
const ROOT_KEY_LEN = 32;

export interface KeyStatus {
  readonly term: number;
  /** ISO 8601, as Vault's sys/key-status. */
  readonly install_time: string;
}

/** An initialization whose keyring is live in memory but not yet stored (see SealManager.init). */
export interface PreparedInit {
  /** Stores the keyring through db (a transaction, usually). */
  commit(db: Kysely<object>): Promise<void>;
  /** Forgets the keyring and seals again. */
  abort(): void;
}

/**
 * The encrypting layer between the store and everything sensitive: AES-256-GCM with a keyring of
 * terms. The keyring lives in the store encrypted under the 32-byte root key, which only the seal
 * can produce; while sealed the barrier holds no key material and refuses to encrypt or decrypt.
 */
export class Barrier implements KeyProtector {
  private ring: Keyring | undefined;
  private rootKey: Buffer | undefined;
  private readonly nonces = new NonceSource();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  get sealed(): boolean {
    return this.ring === undefined;
  }

  async isInitialized(db: Kysely<object> = this.store.db): Promise<boolean> {
    const row = await db
      .withTables<SealTables>()
      .selectFrom("barrier_keyring")
      .select("id")
      .where("id", "=", KEYRING_ID)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Creates and stores a keyring under rootKey; the barrier is unsealed afterwards. */
  async initialize(rootKey: Uint8Array): Promise<void> {
    const prepared = this.prepareInitialize(rootKey);
    try {
      await this.store.transaction((trx) => prepared.commit(trx));
    } catch (e) {
      prepared.abort();
      throw e;
    }
  }

  /** Unseals with a fresh keyring in memory only; commit() stores it, abort() drops it. */
  prepareInitialize(rootKey: Uint8Array): PreparedInit {
    checkRootKey(rootKey, "FR_SEAL_CONFIG");
    if (!this.sealed) fail("FR_ALREADY_INITIALIZED", "the barrier is initialized and unsealed");
    const ring = newKeyring(this.clock.now().getTime());
    const root = Buffer.from(rootKey);
    this.ring = ring;
    this.rootKey = root;
    return {
      commit: async (db) => {
        if (await this.isInitialized(db))
          fail("FR_ALREADY_INITIALIZED", "the barrier keyring already exists");
        await db
          .withTables<SealTables>()
          .insertInto("barrier_keyring")
          .values({
            id: KEYRING_ID,
            value: this.encryptKeyring(ring, root),
            updated_ms: this.clock.now().getTime(),
          })
          .execute();
      },
      abort: () => {
        if (this.ring === ring) this.seal();
      },
    };
  }

  /** Reads the keyring with rootKey. A wrong key is FR_UNSEAL_FAILED; the barrier stays sealed. */
  async unseal(rootKey: Uint8Array): Promise<void> {
    checkRootKey(rootKey, "FR_UNSEAL_FAILED");
    const root = Buffer.from(rootKey);
    const ring = await this.loadKeyring(root, this.store.db);
    this.seal();
    this.ring = ring;
    this.rootKey = root;
  }

  /** Forgets (and overwrites) all key material. */
  seal(): void {
    zeroKeyring(this.ring);
    this.rootKey?.fill(0);
    this.ring = undefined;
    this.rootKey = undefined;
  }

  async encrypt(aad: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const t = activeTerm(this.unsealedRing());
    return Promise.resolve(sealValue(t.key, t.term, aad, plaintext, this.nonces));
  }

  async decrypt(aad: string, ciphertext: Uint8Array): Promise<Uint8Array> {
    let ring = this.unsealedRing();
    const term = termOf(ciphertext);
    if (term === undefined) fail("FR_BARRIER_DECRYPT", "the value is not in the barrier format");
    let key = ring.terms.find((t) => t.term === term);
    if (!key && term > activeTerm(ring).term) {
      // Another node sharing this store rotated the keyring: pick up the new term.
      await this.reload();
      ring = this.unsealedRing();
      key = ring.terms.find((t) => t.term === term);
    }
    if (!key) fail("FR_BARRIER_DECRYPT", `the value names key term ${term}, which the keyring does not hold`);
    const pt = openValue(key.key, aad, ciphertext);
    if (!pt) fail("FR_BARRIER_DECRYPT", "the value was altered or belongs to another place");
    return pt;
  }

  /** Adds a keyring term; new values use it, older terms stay for decryption. Returns the new status. */
  async rotate(): Promise<KeyStatus> {
    this.unsealedRing();
    const root = this.rootKey!;
    const ring = await this.store.transaction(async (trx) => {
      // Start from the stored ring, so a rotation on another node is not lost.
      const stored = await this.loadKeyring(root, trx);
      const next = withNewTerm(stored, this.clock.now().getTime());
      await trx
        .withTables<SealTables>()
        .updateTable("barrier_keyring")
        .set({ value: this.encryptKeyring(next, root), updated_ms: this.clock.now().getTime() })
        .where("id", "=", KEYRING_ID)
        .execute();
      return next;
    });
    if (this.rootKey !== root) {
      zeroKeyring(ring); // sealed meanwhile
      fail("FR_SEALED", "the barrier was sealed during rotation; the new term is stored");
    }
    zeroKeyring(this.ring);
    this.ring = ring;
    return this.keyStatus();
  }

  keyStatus(): KeyStatus {
    const t = activeTerm(this.unsealedRing());
    return { term: t.term, install_time: new Date(t.installMs).toISOString() };
  }

  /** A key/value view over barrier_entries: paths are prefix + key, each value bound to its path. */
  view(prefix: string): BarrierView {
    return new BarrierView(this, this.store.db, prefix);
  }

  private async reload(): Promise<void> {
    const root = this.rootKey;
    if (!root) return;
    const ring = await this.loadKeyring(root, this.store.db);
    if (this.rootKey !== root) return zeroKeyring(ring);
    zeroKeyring(this.ring);
    this.ring = ring;
  }

  /** Throws FR_SEALED while sealed. */
  assertUnsealed(): void {
    this.unsealedRing();
  }

  private unsealedRing(): Keyring {
    return this.ring ?? fail("FR_SEALED", "unseal the server first (sys/unseal)");
  }

  private encryptKeyring(ring: Keyring, root: Buffer): Buffer {
    const plain = encodeKeyring(ring);
    try {
      return sealValue(root, 0, KEYRING_AAD, plain);
    } finally {
      plain.fill(0);
    }
  }

  private async loadKeyring(root: Buffer, db: Kysely<object>): Promise<Keyring> {
    const row = await db
      .withTables<SealTables>()
      .selectFrom("barrier_keyring")
      .select("value")
      .where("id", "=", KEYRING_ID)
      .executeTakeFirst();
    if (!row) fail("FR_NOT_INITIALIZED", "the barrier has no keyring; initialize first (sys/init)");
    const plain = openValue(root, KEYRING_AAD, row.value);
    if (!plain) fail("FR_UNSEAL_FAILED", "the root key does not open the barrier keyring");
    try {
      return decodeKeyring(plain) ?? fail("FR_BARRIER_DECRYPT", "the stored keyring is malformed");
    } finally {
      plain.fill(0);
    }
  }
}

function checkRootKey(rootKey: Uint8Array, code: "FR_SEAL_CONFIG" | "FR_UNSEAL_FAILED"): void {
  if (rootKey.length !== ROOT_KEY_LEN)
    fail(code, `the root key must be ${ROOT_KEY_LEN} bytes, got ${rootKey.length}`);
}
