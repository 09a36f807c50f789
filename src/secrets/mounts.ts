import { randomBytes, randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { SecretsTables } from "./migrations.js";
import { normalizeMountPath } from "./paths.js";

/** The KV engine's settings for a mount (KV v2 `config` endpoint). */
export interface KvConfig {
  /** 0 means the default of 10. */
  readonly max_versions: number;
  readonly cas_required: boolean;
  /** Seconds; 0 means never. */
  readonly delete_version_after: number;
}

export interface MountConfig {
  readonly default_lease_ttl: number;
  readonly max_lease_ttl: number;
  readonly kv: KvConfig;
}

export interface Mount {
  /** Canonical, with a trailing slash: "secret/". */
  readonly path: string;
  /** Stable id that binds stored values to this mount (part of every value's associated data). */
  readonly uuid: string;
  readonly accessor: string;
  readonly type: "kv";
  readonly version: 1 | 2;
  readonly description: string;
  readonly config: MountConfig;
  readonly createdAt: number;
}

/** Paths the core and the other modules serve: no mount may shadow them. */
const RESERVED = ["sys/", "auth/", "cubbyhole/", "identity/", "pki/", "fleet/", "ros2/", "updates/", "v1/"];
const DEFAULT_KV: KvConfig = { max_versions: 0, cas_required: false, delete_version_after: 0 };
/** How long another node's mount change may take to be seen here. */
const CACHE_MS = 1000;

type MountRow = SecretsTables["secrets_mount"];

/**
 * The mount table: which path prefix is which secrets engine. Stored in secrets_mount, cached here and
 * re-read at most once a second, so nodes sharing PostgreSQL converge.
 */
export class MountTable {
  private readonly db: Kysely<SecretsTables>;
  private cache: Mount[] | undefined;
  private loadedAt = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.db = store.db.withTables<SecretsTables>();
  }

  /** All mounts, longest path first (so the first prefix match is the most specific). */
  async list(): Promise<Mount[]> {
    const now = this.clock.now().getTime();
    if (!this.cache || now - this.loadedAt > CACHE_MS || now < this.loadedAt) {
      const rows = await this.db.selectFrom("secrets_mount").selectAll().execute();
      this.cache = rows
        .map(fromRow)
        .sort((a, b) => b.path.length - a.path.length || a.path.localeCompare(b.path));
      this.loadedAt = now;
    }
    return this.cache;
  }

  /** The mount serving an API path ("secret/data/x") and the rest of the path after it. */
  async resolve(apiPath: string): Promise<{ mount: Mount; rest: string } | undefined> {
    const p = apiPath.endsWith("/") ? apiPath : apiPath + "/";
    for (const m of await this.list()) {
      if (p.startsWith(m.path)) return { mount: m, rest: apiPath.slice(m.path.length) };
    }
    return undefined;
  }

  async get(path: string): Promise<Mount | undefined> {
    const p = normalizeMountPath(path);
    return (await this.list()).find((m) => m.path === p);
  }

  async enable(input: {
    path: string;
    version: 1 | 2;
    description?: string;
    config?: Partial<Omit<MountConfig, "kv">>;
  }): Promise<Mount> {
    const path = normalizeMountPath(input.path);
    checkLeases(input.config?.default_lease_ttl ?? 0, input.config?.max_lease_ttl ?? 0);
    const reserved = RESERVED.find((r) => path.startsWith(r) || r.startsWith(path));
    if (reserved) fail("FR_MOUNT_CONFLICT", `"${path}" overlaps the reserved path "${reserved}"`);
    const mount: Mount = {
      path,
      uuid: randomUUID(),
      accessor: `kv_${randomBytes(4).toString("hex")}`,
      type: "kv",
      version: input.version,
      description: input.description ?? "",
      config: {
        default_lease_ttl: input.config?.default_lease_ttl ?? 0,
        max_lease_ttl: input.config?.max_lease_ttl ?? 0,
        kv: DEFAULT_KV,
      },
      createdAt: this.clock.now().getTime(),
    };
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<SecretsTables>();
      const rows = await t.selectFrom("secrets_mount").select("path").execute();
      const clash = rows.find((r) => r.path.startsWith(path) || path.startsWith(r.path));
      if (clash) fail("FR_MOUNT_CONFLICT", `path is already in use at ${clash.path}`);
      await t.insertInto("secrets_mount").values(toRow(mount)).execute();
    });
    this.cache = undefined;
    return mount;
  }

  /** Removes the mount and everything stored in it, in one transaction. Unknown paths are ignored (as Vault). */
  async disable(path: string): Promise<Mount | undefined> {
    const p = normalizeMountPath(path);
    // As Vault: the built-in paths are not mounts one can remove; saying nothing would read as success.
    if (RESERVED.includes(p)) fail("FR_VALIDATION", `cannot unmount "${p}": it is built in`);
    const gone = await this.store.transaction(async (trx) => {
      const t = trx.withTables<SecretsTables>();
      const row = await t.selectFrom("secrets_mount").selectAll().where("path", "=", p).executeTakeFirst();
      if (!row) return undefined;
      await t.deleteFrom("secrets_kv_version").where("mount", "=", row.uuid).execute();
      await t.deleteFrom("secrets_kv_key").where("mount", "=", row.uuid).execute();
      await t.deleteFrom("secrets_mount").where("path", "=", p).execute();
      return fromRow(row);
    });
    this.cache = undefined;
    return gone;
  }

  /** Updates description, lease TTLs or the KV config of a mount. */
  async update(
    path: string,
    change: {
      description?: string;
      default_lease_ttl?: number;
      max_lease_ttl?: number;
      kv?: Partial<KvConfig>;
    },
  ): Promise<Mount> {
    const p = normalizeMountPath(path);
    const updated = await this.store.transaction(async (trx) => {
      const t = trx.withTables<SecretsTables>();
      const row = await t.selectFrom("secrets_mount").selectAll().where("path", "=", p).executeTakeFirst();
      if (!row) fail("FR_NOT_FOUND", `no mount at ${p}`);
      const m = fromRow(row);
      const next: Mount = {
        ...m,
        description: change.description ?? m.description,
        config: {
          default_lease_ttl: change.default_lease_ttl ?? m.config.default_lease_ttl,
          max_lease_ttl: change.max_lease_ttl ?? m.config.max_lease_ttl,
          kv: { ...m.config.kv, ...(change.kv ?? {}) },
        },
      };
      checkLeases(next.config.default_lease_ttl, next.config.max_lease_ttl);
      await t
        .updateTable("secrets_mount")
        .set({ description: next.description, config: JSON.stringify(next.config) })
        .where("path", "=", p)
        .execute();
      return next;
    });
    this.cache = undefined;
    return updated;
  }

  /** Creates the default `secret/` KV v2 mount once per store (a later disable sticks). */
  async ensureDefaults(): Promise<void> {
    const done = await this.db
      .selectFrom("secrets_state")
      .select("value")
      .where("name", "=", "defaults")
      .executeTakeFirst();
    if (done) return;
    const mount: Mount = {
      path: "secret/",
      uuid: randomUUID(),
      accessor: `kv_${randomBytes(4).toString("hex")}`,
      type: "kv",
      version: 2,
      description: "key/value secret storage",
      config: { default_lease_ttl: 0, max_lease_ttl: 0, kv: DEFAULT_KV },
      createdAt: this.clock.now().getTime(),
    };
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<SecretsTables>();
      // Another node may be doing the same right now: the state row decides who wins.
      const r = await t
        .insertInto("secrets_state")
        .values({ name: "defaults", value: "secret/" })
        .onConflict((oc) => oc.column("name").doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return;
      const existing = await t
        .selectFrom("secrets_mount")
        .select("path")
        .where("path", "=", "secret/")
        .executeTakeFirst();
      if (!existing) await t.insertInto("secrets_mount").values(toRow(mount)).execute();
    });
    this.cache = undefined;
  }
}

/** The system's max lease, as Vault's default (768h): no mount may set a lease above it. */
const SYSTEM_MAX_LEASE_S = 768 * 3600;

/**
 * As Vault: a mount's default lease may not outlast its own max lease (0 means the system's), and neither
 * may outlast the system's max lease (768h).
 */
function checkLeases(defaultTtl: number, maxTtl: number): void {
  if (maxTtl > SYSTEM_MAX_LEASE_S)
    fail("FR_VALIDATION", "given max lease TTL greater than system max lease TTL (768h)");
  if (defaultTtl > SYSTEM_MAX_LEASE_S)
    fail("FR_VALIDATION", "given default lease TTL greater than system max lease TTL (768h)");
  if (defaultTtl > 0 && maxTtl > 0 && defaultTtl > maxTtl)
    fail("FR_VALIDATION", "given default lease TTL greater than given max lease TTL");
}

function toRow(m: Mount): MountRow {
  return {
    path: m.path,
    uuid: m.uuid,
    accessor: m.accessor,
    type: m.type,
    version: m.version,
    description: m.description,
    config: JSON.stringify(m.config),
    created_at: m.createdAt,
  };
}

function fromRow(r: MountRow): Mount {
  const config = JSON.parse(r.config) as MountConfig;
  return {
    path: r.path,
    uuid: r.uuid,
    accessor: r.accessor,
    type: "kv",
    version: Number(r.version) === 1 ? 1 : 2,
    description: r.description,
    config: { ...config, kv: { ...DEFAULT_KV, ...(config.kv ?? {}) } },
    createdAt: Number(r.created_at),
  };
}
