import crypto from "node:crypto";
import { fail } from "../errors/index.js";
import type { KeyManager, RequestKeyPolicy } from "../keys/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import { canonicalJson, canonicalProblem } from "./canonical-json.js";
import type { TufKey, TufSigner } from "./keys.js";
import {
  addSignatures,
  isoSeconds,
  meetsThreshold,
  parseEnvelope,
  serialize,
  specVersion,
  topRoles,
  validSigners,
  type AnySigned,
  type Delegations,
  type Envelope,
  type RoleKeys,
  type RootSigned,
  type SnapshotSigned,
  type TargetFileInfo,
  type TargetsSigned,
  type TimestampSigned,
  type TopRole,
} from "./metadata.js";
import { binFor, binName, checkTargetPath, pathMatches, roleNamePattern } from "./patterns.js";
import {
  defaultExpiry,
  latestMeta,
  loadKeys,
  loadRoles,
  loadSettings,
  maxVersion,
  pendingMeta,
  publishedVersions,
  saveKeys,
  tables,
  type DB,
  type RepoSettings,
  type RoleRow,
} from "./repo-db.js";
import { SignerPool, type KeySpec, type ResolvedKey } from "./signers.js";

export interface InitOptions {
  keys: Record<TopRole, KeySpec[]>;
  thresholds?: Partial<Record<TopRole, number>>;
  /** Lifetimes in seconds. */
  expires?: Partial<RepoSettings["expires"]>;
  consistentSnapshot?: boolean;
}

export interface TargetInput {
  path: string;
  content: Uint8Array;
  custom?: Record<string, unknown>;
  /** The targets role that lists it; default: the role the delegation tree assigns the path to. */
  role?: string;
}

export interface PublishResult {
  published: Array<{ role: string; version: number }>;
  /** Versions made but short of their threshold: export them, sign offline, import. */
  pending: Array<{ role: string; version: number; signatures: number; threshold: number }>;
}

export interface RoleStatus {
  role: string;
  kind: string;
  version: number | null;
  expires: string | null;
  pendingVersion: number | null;
  threshold: number;
  keys: number;
  heldKeys: number;
  dirty: boolean;
}

const nameRe = roleNamePattern;

/**
 * TUF repositories in the core store (TUF specification 1.0). Roles' definitions and targets are rows;
 * every metadata version is kept, signed with the keys this server holds; a version short of its threshold
 * stays pending until signatures made elsewhere are imported.
 */
export class UpdatesRepository {
  readonly pool: SignerPool;
  constructor(
    private readonly deps: {
      store: Store;
      keys: KeyManager;
      clock: Clock;
      /** What the key URIs of requests (init, delegations, rotations, signing) may name. */
      requestKeyPolicy: RequestKeyPolicy;
    },
    pool?: SignerPool,
  ) {
    this.pool = pool ?? new SignerPool(deps.keys, deps.requestKeyPolicy);
  }

  private get db(): DB {
    return tables(this.deps.store.db);
  }

  private now(): number {
    return this.deps.clock.now().getTime();
  }

  /**
   * Runs `fn` on this repository bound to one transaction, publishing included: a request that fails after
   * its first write (a key that cannot sign, stored metadata that cannot be encoded) stores nothing.
   * Inside it a nested transaction joins the open one.
   */
  private atomic<T>(fn: (bound: UpdatesRepository, db: DB) => Promise<T>): Promise<T> {
    return this.deps.store.transaction((trx) => {
      const store: Store = {
        dialect: this.deps.store.dialect,
        db: trx,
        transaction: (inner) => inner(trx),
        transactionCommitted: async (inner) => ({ result: await inner(trx), durable: Promise.resolve() }),
        close: () => Promise.resolve(),
      };
      return fn(new UpdatesRepository({ ...this.deps, store }, this.pool), tables(trx));
    });
  }

  /** Resolves a request's key specs (see SignerPool.resolveAll); a failure in `use` removes keys it made. */
  private async withKeys<T>(specs: readonly KeySpec[], use: (keys: ResolvedKey[]) => Promise<T>): Promise<T> {
    const { keys, keep, discard } = await this.pool.resolveAll(specs);
    try {
      const result = await use(keys);
      keep();
      return result;
    } catch (e) {
      await discard();
      throw e;
    }
  }

  async list(): Promise<string[]> {
    const rows = await this.db.selectFrom("updates_repos").select("name").orderBy("name").execute();
    return rows.map((r) => r.name);
  }

  async init(repo: string, opts: InitOptions): Promise<PublishResult> {
    if (!nameRe.test(repo)) fail("FR_VALIDATION", `repository name "${repo}" must match ${nameRe.source}`);
    const exists = await this.db
      .selectFrom("updates_repos")
      .select("name")
      .where("name", "=", repo)
      .executeTakeFirst();
    if (exists)
      fail("FR_UPDATES_REPO_EXISTS", `repository "${repo}" exists; use rotate-key to change its keys`);
    const settings: RepoSettings = {
      consistent_snapshot: opts.consistentSnapshot ?? true,
      expires: { ...defaultExpiry, ...(opts.expires ?? {}) },
    };
    for (const role of topRoles) {
      const specs = opts.keys[role] ?? [];
      if (specs.length === 0) fail("FR_UPDATES_ROLE", `role ${role} needs at least one key`);
      // Before any key is generated: a threshold no key list can meet must not leave new keys behind.
      checkThreshold(role, opts.thresholds?.[role] ?? 1, specs.length);
    }
    // Every key spec is checked before any key is generated; a later failure removes the keys made.
    const specs = topRoles.map((role) => opts.keys[role] ?? []);
    return this.withKeys(specs.flat(), (all) =>
      this.atomic(async (bound, db) => {
        await db
          .insertInto("updates_repos")
          .values({ name: repo, settings: JSON.stringify(settings), created_ms: this.now() })
          .execute();
        for (const [ord, role] of topRoles.entries()) {
          const keys = all.splice(0, specs[ord]!.length);
          await saveKeys(db, repo, keys);
          const keyids = [...new Set(keys.map((k) => k.keyid))];
          const threshold = opts.thresholds?.[role] ?? 1;
          checkThreshold(role, threshold, keyids.length);
          await db
            .insertInto("updates_roles")
            .values(roleRow(repo, role, "top", null, keyids, threshold, settings.expires[role], ord))
            .execute();
        }
        return bound.publish(repo);
      }),
    );
  }

  /** Adds (or replaces) targets; each lands in the role the delegation tree assigns it to. */
  async addTargets(
    repo: string,
    items: readonly TargetInput[],
  ): Promise<Array<{ path: string; role: string; sha256: string; length: number }>> {
    await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const out = items.map((t) => {
      const problem = checkTargetPath(t.path);
      if (problem) fail("FR_UPDATES_TARGET", `${JSON.stringify(t.path)}: ${problem}`);
      const role = t.role ?? assignRole(roles, t.path);
      const r = roles.get(role);
      if (!r || (r.kind === "top" && role !== "targets") || r.succinct) {
        fail(
          "FR_UPDATES_ROLE",
          `role "${role}" cannot list targets (a targets role without hash bins is needed)`,
        );
      }
      const sha256 = crypto.createHash("sha256").update(t.content).digest("hex");
      // Encoded now as publishTargets will: a value canonical JSON refuses would block every later publish.
      const entry = { length: t.content.length, hashes: { sha256 }, custom: t.custom };
      const unsignable = canonicalProblem({ targets: Object.fromEntries([[t.path, entry]]) });
      if (unsignable) {
        fail(
          "FR_UPDATES_TARGET",
          `target ${JSON.stringify(t.path)} cannot be signed: ${unsignable}; custom metadata may hold ` +
            `only integers, well-formed Unicode strings, booleans, null, arrays and objects, nested at ` +
            `most 60 levels deep`,
        );
      }
      return { ...t, role, sha256, length: t.content.length };
    });
    await this.deps.store.transaction(async (trx) => {
      const db = tables(trx);
      const dirty = new Set<string>();
      for (const t of out) {
        const old = await db
          .selectFrom("updates_targets")
          .select("role")
          .where("repo", "=", repo)
          .where("path", "=", t.path)
          .executeTakeFirst();
        if (old) dirty.add(old.role);
        dirty.add(t.role);
        const row = {
          repo,
          path: t.path,
          role: t.role,
          length: t.length,
          sha256: t.sha256,
          custom: t.custom ? JSON.stringify(t.custom) : null,
        };
        await db
          .insertInto("updates_targets")
          .values(row)
          .onConflict((oc) =>
            oc
              .columns(["repo", "path"])
              .doUpdateSet({ role: row.role, length: row.length, sha256: row.sha256, custom: row.custom }),
          )
          .execute();
        await db
          .insertInto("updates_blobs")
          .values({ repo, sha256: t.sha256, content: Buffer.from(t.content) })
          .onConflict((oc) => oc.columns(["repo", "sha256"]).doNothing())
          .execute();
      }
      await markDirty(db, repo, [...dirty]);
    });
    return out.map(({ path, role, sha256, length }) => ({ path, role, sha256, length }));
  }

  async removeTarget(repo: string, path: string): Promise<void> {
    const row = await this.db
      .selectFrom("updates_targets")
      .select("role")
      .where("repo", "=", repo)
      .where("path", "=", path)
      .executeTakeFirst();
    if (!row) fail("FR_NOT_FOUND", `repository "${repo}" has no target ${JSON.stringify(path)}`);
    await this.deps.store.transaction(async (trx) => {
      const db = tables(trx);
      await db.deleteFrom("updates_targets").where("repo", "=", repo).where("path", "=", path).execute();
      await markDirty(db, repo, [row.role]);
    });
  }

  /** A delegated targets role for path patterns; `terminating` stops the search below it. */
  async delegate(
    repo: string,
    opts: {
      name: string;
      parent?: string;
      keys: KeySpec[];
      threshold?: number;
      paths: string[];
      terminating?: boolean;
    },
  ): Promise<void> {
    const settings = await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const parent = opts.parent ?? "targets";
    this.checkNewRole(roles, opts.name, parent);
    if (opts.paths.length === 0) fail("FR_UPDATES_ROLE", "a delegation needs at least one path pattern");
    for (const p of opts.paths) {
      const problem = canonicalProblem(p); // the parent's signed delegations carry the patterns
      if (problem)
        fail(
          "FR_UPDATES_ROLE",
          `path pattern ${JSON.stringify(p)} cannot be signed: ${problem}; fix the pattern`,
        );
    }
    await this.withKeys(opts.keys, async (keys) => {
      const keyids = [...new Set(keys.map((k) => k.keyid))];
      const threshold = opts.threshold ?? 1;
      checkThreshold(opts.name, threshold, keyids.length);
      await this.deps.store.transaction(async (trx) => {
        const db = tables(trx);
        await saveKeys(db, repo, keys);
        const row = roleRow(
          repo,
          opts.name,
          "delegated",
          parent,
          keyids,
          threshold,
          settings.expires.delegated,
          roles.size,
        );
        row.paths = JSON.stringify(opts.paths);
        row.terminating = opts.terminating ? 1 : 0;
        await db.insertInto("updates_roles").values(row).execute();
        await markDirty(db, repo, [parent]);
      });
    });
  }

  /** TAP 15: delegates every path from `parent` to 2^bitLength bins sharing one set of keys. */
  async delegateHashBins(
    repo: string,
    opts: { parent?: string; prefix?: string; bitLength: number; keys: KeySpec[]; threshold?: number },
  ): Promise<void> {
    const settings = await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const parent = opts.parent ?? "targets";
    const prefix = opts.prefix ?? "bins";
    const p = roles.get(parent);
    if (!p || p.kind === "bin" || (p.kind === "top" && parent !== "targets"))
      fail("FR_UPDATES_ROLE", `"${parent}" is not a targets role`);
    if (p.succinct || [...roles.values()].some((r) => r.parent === parent)) {
      fail("FR_UPDATES_ROLE", `"${parent}" already delegates; hash bins must be its only delegation`);
    }
    if (!Number.isInteger(opts.bitLength) || opts.bitLength < 1 || opts.bitLength > 14) {
      fail("FR_UPDATES_ROLE", "bit length must be 1 to 14 (2 to 16384 bins)");
    }
    const succinct = { bit_length: opts.bitLength, name_prefix: prefix };
    const names = Array.from({ length: 2 ** opts.bitLength }, (_, i) => binName(succinct, i));
    for (const n of names) this.checkNewRole(roles, n, parent);
    const existing = await this.db
      .selectFrom("updates_targets")
      .select(["path", "role"])
      .where("repo", "=", repo)
      .where("role", "=", parent)
      .execute();
    await this.withKeys(opts.keys, async (keys) => {
      const keyids = [...new Set(keys.map((k) => k.keyid))];
      const threshold = opts.threshold ?? 1;
      checkThreshold(prefix, threshold, keyids.length);
      await this.deps.store.transaction(async (trx) => {
        const db = tables(trx);
        await saveKeys(db, repo, keys);
        let ord = roles.size;
        for (const n of names) {
          await db
            .insertInto("updates_roles")
            .values(roleRow(repo, n, "bin", parent, keyids, threshold, settings.expires.delegated, ord++))
            .execute();
        }
        await db
          .updateTable("updates_roles")
          .set({ succinct: JSON.stringify({ ...succinct, keyids, threshold }), dirty: 1 })
          .where("repo", "=", repo)
          .where("name", "=", parent)
          .execute();
        // The parent may not list targets itself any more: move them into their bins.
        for (const t of existing) {
          await db
            .updateTable("updates_targets")
            .set({ role: binFor(succinct, t.path) })
            .where("repo", "=", repo)
            .where("path", "=", t.path)
            .execute();
        }
      });
    });
  }

  /** Changes a top-level role's keys or threshold; takes effect in the next root version (publish). */
  async rotateKey(
    repo: string,
    opts: { role: TopRole; add?: KeySpec[]; remove?: string[]; threshold?: number },
  ): Promise<PublishResult> {
    await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const r = roles.get(opts.role);
    if (!r || r.kind !== "top") return fail("FR_UPDATES_ROLE", `"${opts.role}" is not a top-level role`);
    const current = JSON.parse(r.keyids) as string[];
    // A keyid that is not the role's would otherwise still sign a new root version that changes nothing.
    const stray = (opts.remove ?? []).find((k) => !current.includes(k));
    if (stray !== undefined) fail("FR_UPDATES_KEY", `key ${stray} is not a key of role "${opts.role}"`);
    return this.withKeys(opts.add ?? [], async (add) => {
      const keyids = current.filter((k) => !(opts.remove ?? []).includes(k));
      for (const k of add) if (!keyids.includes(k.keyid)) keyids.push(k.keyid);
      const threshold = opts.threshold ?? r.threshold;
      checkThreshold(opts.role, threshold, keyids.length);
      // One transaction with the publish: a new root that cannot be completed is not left behind.
      return this.atomic(async (bound, db) => {
        await saveKeys(db, repo, add);
        await db
          .updateTable("updates_roles")
          .set({ keyids: JSON.stringify(keyids), threshold })
          .where("repo", "=", repo)
          .where("name", "=", opts.role)
          .execute();
        await markDirty(db, repo, ["root"]);
        return bound.publish(repo);
      });
    });
  }

  /**
   * Makes new versions of changed roles, signed with the keys this server holds; then, if anything was
   * published (or `force` names them), a new snapshot and timestamp.
   */
  async publish(
    repo: string,
    opts: { force?: Array<"snapshot" | "timestamp"> } = {},
  ): Promise<PublishResult> {
    const settings = await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const result: PublishResult = { published: [], pending: [] };
    const now = this.now();
    const rootRow = roles.get("root")!;
    const before = rootRow.dirty ? await this.trustedRoot(repo) : undefined;
    if (rootRow.dirty) await this.publishRoot(repo, roles, settings, now, result);
    const trustedRoot = await this.trustedRoot(repo);
    if (!trustedRoot) return result; // the first root is pending: nothing else can be trusted yet
    if (before && targetsKeysChanged(before.signed, trustedRoot.signed)) {
      await markDirty(this.db, repo, ["targets"]);
      roles.set("targets", { ...roles.get("targets")!, dirty: 1 });
    }
    for (const r of roles.values()) {
      if ((r.dirty && r.kind !== "top") || (r.dirty && r.name === "targets")) {
        await this.publishTargets(repo, r, roles, trustedRoot.signed, settings, now, result);
      }
    }
    // A snapshot must list targets.json (TUF 5.5): until a first targets version meets its threshold (one
    // signed with offline keys is imported), no snapshot or timestamp is published — clients find no
    // timestamp rather than metadata that references targets they cannot fetch. `status` says so.
    if (!(await latestMeta(this.db, repo, "targets"))) return result;
    const force = new Set(opts.force ?? []);
    // Dirty snapshot or timestamp: an earlier publish stored what they must follow and stopped short.
    if (roles.get("snapshot")?.dirty) force.add("snapshot");
    if (roles.get("timestamp")?.dirty) force.add("timestamp");
    if (result.published.length > 0 || force.has("snapshot")) {
      await this.publishSnapshot(repo, roles, trustedRoot.signed, settings, now, result);
      force.add("timestamp");
    }
    if (force.has("timestamp")) await this.publishTimestamp(repo, trustedRoot.signed, settings, now, result);
    return result;
  }

  private async trustedRoot(repo: string): Promise<Envelope<RootSigned> | undefined> {
    const row = await latestMeta(this.db, repo, "root");
    return row ? parseEnvelope(row.body, "root") : undefined;
  }

  private async publishRoot(
    repo: string,
    roles: Map<string, RoleRow>,
    settings: RepoSettings,
    now: number,
    result: PublishResult,
  ) {
    const keyidsOf = (r: TopRole) => JSON.parse(roles.get(r)!.keyids) as string[];
    const allIds = [...new Set(topRoles.flatMap(keyidsOf))];
    const keys = await loadKeys(this.db, repo, allIds);
    const old = await this.trustedRoot(repo);
    // Clients walk root versions one by one (TUF 5.3.3): a new root follows the last *published* one and
    // takes the number of a pending version it replaces, which would otherwise leave a gap no client crosses.
    const version = (old?.signed.version ?? 0) + 1;
    const signed: RootSigned = {
      _type: "root",
      spec_version: specVersion,
      version,
      expires: isoSeconds(now + settings.expires.root * 1000),
      consistent_snapshot: settings.consistent_snapshot,
      keys: Object.fromEntries(allIds.map((id) => [id, keys.get(id)!.key])),
      roles: Object.fromEntries(
        topRoles.map((r) => [r, { keyids: keyidsOf(r), threshold: roles.get(r)!.threshold }]),
      ) as Record<TopRole, RoleKeys>,
    };
    // TUF 5.3.4: a new root must carry a threshold of the old root's keys and of its own.
    const oldIds = old ? old.signed.roles.root.keyids : [];
    const oldKeys = old ? await loadKeys(this.db, repo, oldIds) : new Map<string, ResolvedKey>();
    const signers = await this.heldSigners(
      [...new Set([...signed.roles.root.keyids, ...oldIds])],
      new Map([...keys, ...oldKeys]),
    );
    const env = await addSignatures({ signatures: [], signed }, signers);
    await this.store(
      repo,
      "root",
      env,
      result,
      (e) =>
        meetsThreshold(e, signed.keys, signed.roles.root) &&
        (!old || meetsThreshold(e, old.signed.keys, old.signed.roles.root)),
      signed.roles.root.threshold,
      staleAfter("root", old?.signed, signed),
    );
  }

  private async publishTargets(
    repo: string,
    r: RoleRow,
    roles: Map<string, RoleRow>,
    root: RootSigned,
    settings: RepoSettings,
    now: number,
    result: PublishResult,
  ) {
    const rows = await this.db
      .selectFrom("updates_targets")
      .select(["path", "length", "sha256", "custom"])
      .where("repo", "=", repo)
      .where("role", "=", r.name)
      .execute();
    // fromEntries: a target named `__proto__` is a key like any other, not the map's prototype.
    const targets: Record<string, TargetFileInfo> = Object.fromEntries(
      rows.map((t) => [
        t.path,
        {
          length: Number(t.length),
          hashes: { sha256: t.sha256 },
          ...(t.custom ? { custom: JSON.parse(t.custom) as Record<string, unknown> } : {}),
        },
      ]),
    );
    const version = (await maxVersion(this.db, repo, r.name)) + 1;
    const signed: TargetsSigned = {
      _type: "targets",
      spec_version: specVersion,
      version,
      expires: isoSeconds(
        now + (r.kind === "top" ? settings.expires.targets : settings.expires.delegated) * 1000,
      ),
      targets,
    };
    const delegations = await this.delegationsOf(repo, r, roles);
    if (delegations) signed.delegations = delegations;
    const { keys, role } = await this.definitionOf(repo, r, root);
    const signers = await this.heldSigners(role.keyids, keys);
    const env = await addSignatures({ signatures: [], signed }, signers);
    const keyObj = Object.fromEntries([...keys].map(([id, k]) => [id, k.key]));
    await this.store(
      repo,
      r.name,
      env,
      result,
      (e) => meetsThreshold(e, keyObj, role),
      role.threshold,
      staleAfter(r.name),
    );
  }

  /** Who must sign a role: root's entry for top-level roles, the parent's delegation otherwise. */
  private async definitionOf(repo: string, r: RoleRow, root: RootSigned) {
    if (r.kind === "top") {
      const role = root.roles[r.name as TopRole];
      const keys = new Map(
        Object.entries(root.keys).map(([id, key]) => [id, { keyid: id, key, uri: null } as ResolvedKey]),
      );
      const held = await loadKeys(this.db, repo, role.keyids);
      for (const [id, k] of held) keys.set(id, k);
      return { keys, role };
    }
    const role = { keyids: JSON.parse(r.keyids) as string[], threshold: r.threshold };
    return { keys: await loadKeys(this.db, repo, role.keyids), role };
  }

  private async delegationsOf(
    repo: string,
    r: RoleRow,
    roles: Map<string, RoleRow>,
  ): Promise<Delegations | undefined> {
    if (r.succinct) {
      const s = JSON.parse(r.succinct) as {
        bit_length: number;
        name_prefix: string;
        keyids: string[];
        threshold: number;
      };
      const keys = await loadKeys(this.db, repo, s.keyids);
      return {
        keys: Object.fromEntries([...keys].map(([id, k]) => [id, k.key])),
        succinct_roles: {
          keyids: s.keyids,
          threshold: s.threshold,
          bit_length: s.bit_length,
          name_prefix: s.name_prefix,
        },
      };
    }
    const children = [...roles.values()].filter((c) => c.parent === r.name && c.kind === "delegated");
    if (children.length === 0) return undefined;
    const ids = [...new Set(children.flatMap((c) => JSON.parse(c.keyids) as string[]))];
    const keys = await loadKeys(this.db, repo, ids);
    return {
      keys: Object.fromEntries([...keys].map(([id, k]) => [id, k.key])),
      roles: children.map((c) => ({
        name: c.name,
        keyids: JSON.parse(c.keyids) as string[],
        threshold: c.threshold,
        terminating: c.terminating === 1,
        paths: JSON.parse(c.paths ?? "[]") as string[],
      })),
    };
  }

  private async publishSnapshot(
    repo: string,
    roles: Map<string, RoleRow>,
    root: RootSigned,
    settings: RepoSettings,
    now: number,
    result: PublishResult,
  ) {
    const versions = await publishedVersions(this.db, repo);
    const meta: SnapshotSigned["meta"] = {};
    for (const r of roles.values()) {
      if (r.kind === "top" && r.name !== "targets") continue;
      const v = versions.get(r.name);
      if (v !== undefined) meta[`${r.name}.json`] = { version: v };
    }
    const signed: SnapshotSigned = {
      _type: "snapshot",
      spec_version: specVersion,
      version: (await maxVersion(this.db, repo, "snapshot")) + 1,
      expires: isoSeconds(now + settings.expires.snapshot * 1000),
      meta,
    };
    await this.signTop(repo, "snapshot", signed, root, result);
  }

  private async publishTimestamp(
    repo: string,
    root: RootSigned,
    settings: RepoSettings,
    now: number,
    result: PublishResult,
  ) {
    const snap = await latestMeta(this.db, repo, "snapshot");
    if (!snap) return;
    const signed: TimestampSigned = {
      _type: "timestamp",
      spec_version: specVersion,
      version: (await maxVersion(this.db, repo, "timestamp")) + 1,
      expires: isoSeconds(now + settings.expires.timestamp * 1000),
      meta: {
        "snapshot.json": {
          version: snap.version,
          length: snap.body.length,
          hashes: { sha256: crypto.createHash("sha256").update(snap.body).digest("hex") },
        },
      },
    };
    await this.signTop(repo, "timestamp", signed, root, result);
  }

  private async signTop(
    repo: string,
    role: "snapshot" | "timestamp",
    signed: AnySigned,
    root: RootSigned,
    result: PublishResult,
  ) {
    const def = root.roles[role];
    const keys = await loadKeys(this.db, repo, def.keyids);
    const signers = await this.heldSigners(def.keyids, keys);
    const env = await addSignatures({ signatures: [], signed }, signers);
    await this.store(
      repo,
      role,
      env,
      result,
      (e) => meetsThreshold(e, root.keys, def),
      def.threshold,
      staleAfter(role),
    );
  }

  /** Signers for those keyids whose private keys this server holds and can open now. */
  private async heldSigners(keyids: readonly string[], keys: Map<string, ResolvedKey>): Promise<TufSigner[]> {
    const out: TufSigner[] = [];
    for (const id of keyids) {
      const k = keys.get(id);
      const s = k ? await this.pool.signerFor(k) : undefined;
      if (s) out.push(s);
    }
    return out;
  }

  /**
   * Stores a new version of `role`, published when `complete` says its signatures meet the threshold, else
   * pending. A published version marks `stale` (the roles that must follow it: snapshot after a targets
   * role, timestamp after snapshot) dirty in the same transaction, so a publish cut short after this point
   * (an error, a crash) leaves work the next publish or refresh finishes, never a version no snapshot lists.
   */
  private async store(
    repo: string,
    role: string,
    env: Envelope,
    result: PublishResult,
    complete: (e: Envelope) => boolean,
    threshold: number,
    stale: readonly string[],
  ) {
    const ok = complete(env);
    const body = serialize(env);
    await this.deps.store.transaction(async (trx) => {
      const db = tables(trx);
      // A new version supersedes any older pending one of the same role.
      await db
        .deleteFrom("updates_metadata")
        .where("repo", "=", repo)
        .where("role", "=", role)
        .where("state", "=", "pending")
        .execute();
      await db
        .insertInto("updates_metadata")
        .values({
          repo,
          role,
          version: env.signed.version,
          state: ok ? "published" : "pending",
          body,
          expires_ms: Date.parse(env.signed.expires),
          created_ms: this.now(),
        })
        .execute();
      await db
        .updateTable("updates_roles")
        .set({ dirty: 0 })
        .where("repo", "=", repo)
        .where("name", "=", role)
        .execute();
      if (ok) await markDirty(db, repo, [...stale]);
    });
    if (ok) result.published.push({ role, version: env.signed.version });
    else
      result.pending.push({
        role,
        version: env.signed.version,
        signatures: env.signatures.length,
        threshold,
      });
  }

  /** The pending (unsigned or partly signed) metadata of a role, for signing on another machine. */
  async exportPending(repo: string, role: string): Promise<Envelope> {
    await loadSettings(this.db, repo);
    const row = await pendingMeta(this.db, repo, role);
    if (!row)
      return fail("FR_NOT_FOUND", `role "${role}" of "${repo}" has no pending metadata; publish first`);
    return JSON.parse(row.body.toString("utf8")) as Envelope;
  }

  /**
   * Merges signatures made elsewhere into the pending version they sign. When the threshold is met the
   * version is published and a new snapshot and timestamp follow.
   */
  async importSignatures(
    repo: string,
    text: string | Uint8Array,
  ): Promise<PublishResult & { role: string; valid: number; threshold: number }> {
    await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    let probe: Envelope;
    try {
      probe = JSON.parse(typeof text === "string" ? text : Buffer.from(text).toString("utf8")) as Envelope;
    } catch {
      return fail("FR_UPDATES_METADATA", "the metadata to import is not valid JSON");
    }
    const type = probe?.signed?._type;
    if (type !== "root" && type !== "targets" && type !== "snapshot" && type !== "timestamp") {
      return fail("FR_UPDATES_METADATA", `_type ${JSON.stringify(type)} is not a TUF role type`);
    }
    const env = parseEnvelope(text, type);
    let role: string | undefined;
    let pending;
    for (const name of type === "targets" ? [...roles.keys()] : [type]) {
      const p = await pendingMeta(this.db, repo, name);
      if (
        p &&
        p.version === env.signed.version &&
        canonicalJson((JSON.parse(p.body.toString("utf8")) as Envelope).signed).equals(
          canonicalJson(env.signed),
        )
      ) {
        role = name;
        pending = p;
        break;
      }
    }
    if (!role || !pending)
      return fail(
        "FR_UPDATES_METADATA",
        `no pending ${type} version ${env.signed.version} has exactly this content; export it again`,
      );
    const current = JSON.parse(pending.body.toString("utf8")) as Envelope;
    const merged: Envelope = { signed: current.signed, signatures: [...current.signatures] };
    for (const s of env.signatures)
      if (!merged.signatures.some((m) => m.keyid === s.keyid)) merged.signatures.push(s);
    const check = await this.thresholdCheck(repo, role, roles, merged);
    if (check.bad.length > 0)
      fail(
        "FR_UPDATES_SIGNATURE",
        `signatures by ${check.bad.join(", ")} do not verify or are not the role's keys`,
      );
    const result: PublishResult = { published: [], pending: [] };
    const before = role === "root" && check.complete ? await this.trustedRoot(repo) : undefined;
    await this.deps.store.transaction(async (trx) => {
      await tables(trx)
        .updateTable("updates_metadata")
        .set({ body: serialize(merged), state: check.complete ? "published" : "pending" })
        .where("repo", "=", repo)
        .where("role", "=", role)
        .where("version", "=", env.signed.version)
        .execute();
      // As store() does: what must follow the published version is marked in the same transaction.
      if (check.complete)
        await markDirty(tables(trx), repo, staleAfter(role, before?.signed, merged.signed as RootSigned));
    });
    if (check.complete) {
      result.published.push({ role, version: env.signed.version });
      const more = await this.publish(repo, {
        force: role === "timestamp" ? [] : role === "snapshot" ? ["timestamp"] : ["snapshot"],
      });
      result.published.push(...more.published);
      result.pending.push(...more.pending);
    } else {
      result.pending.push({
        role,
        version: env.signed.version,
        signatures: check.valid,
        threshold: check.threshold,
      });
    }
    return { ...result, role, valid: check.valid, threshold: check.threshold };
  }

  /** Signs a pending version with keys this server holds (named by URI). */
  async signPending(
    repo: string,
    role: string,
    uris: readonly string[],
  ): Promise<PublishResult & { role: string; valid: number; threshold: number }> {
    const env = await this.exportPending(repo, role);
    const signers: TufSigner[] = [];
    for (const uri of uris) {
      // No `generate`: nothing is made, so there is nothing to keep or discard.
      const [k] = (await this.pool.resolveAll([{ uri }])).keys;
      const s = await this.pool.signerFor(k!);
      if (!s) fail("FR_UPDATES_KEY", `cannot open ${uri} on this server`);
      signers.push(s);
    }
    return this.importSignatures(repo, serialize(await addSignatures(env, signers)));
  }

  private async thresholdCheck(repo: string, role: string, roles: Map<string, RoleRow>, env: Envelope) {
    const r = roles.get(role);
    if (!r) return fail("FR_UPDATES_ROLE", `no role "${role}"`);
    const checks: Array<{ keys: Record<string, TufKey>; role: RoleKeys }> = [];
    if (role === "root") {
      const signed = env.signed as RootSigned;
      checks.push({ keys: signed.keys, role: signed.roles.root });
      const old = await this.trustedRoot(repo);
      if (old) checks.push({ keys: old.signed.keys, role: old.signed.roles.root });
    } else {
      const root =
        (await this.trustedRoot(repo)) ??
        fail("FR_UPDATES_ROLE", "the root metadata must be published first");
      const def = await this.definitionOf(repo, r, root.signed);
      checks.push({ keys: Object.fromEntries([...def.keys].map(([id, k]) => [id, k.key])), role: def.role });
    }
    const allowed = new Set(checks.flatMap((c) => c.role.keyids));
    const good = new Set(checks.flatMap((c) => validSigners(env, c.keys, c.role)));
    const bad = env.signatures.map((s) => s.keyid).filter((id) => !allowed.has(id) || !good.has(id));
    const complete = checks.every((c) => validSigners(env, c.keys, c.role).length >= c.role.threshold);
    const first = checks[0]!;
    return {
      complete,
      bad,
      valid: validSigners(env, first.keys, first.role).length,
      threshold: first.role.threshold,
    };
  }

  async status(repo: string): Promise<{
    repo: string;
    settings: RepoSettings;
    roles: RoleStatus[];
    targets: number;
    /** Whether clients can update: a timestamp is published. */
    servable: boolean;
    /** Why clients cannot update yet (the signature the repository waits for), or null. */
    waiting: string | null;
  }> {
    const settings = await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const keys = await loadKeys(this.db, repo);
    const versions = await this.db
      .selectFrom("updates_metadata")
      .select(["role", "version", "state", "expires_ms"])
      .where("repo", "=", repo)
      .orderBy("version", "desc")
      .execute();
    const count = await this.db
      .selectFrom("updates_targets")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("repo", "=", repo)
      .executeTakeFirst();
    const out: RoleStatus[] = [];
    for (const r of roles.values()) {
      const ids = JSON.parse(r.keyids) as string[];
      const pub = versions.find((v) => v.role === r.name && v.state === "published");
      const pend = versions.find((v) => v.role === r.name && v.state === "pending");
      let held = 0;
      for (const id of ids) {
        const k = keys.get(id);
        if (k && (await this.pool.signerFor(k))) held++;
      }
      out.push({
        role: r.name,
        kind: r.kind,
        version: pub ? Number(pub.version) : null,
        expires: pub ? isoSeconds(Number(pub.expires_ms)) : null,
        pendingVersion: pend ? Number(pend.version) : null,
        threshold: r.threshold,
        keys: ids.length,
        heldKeys: held,
        dirty: r.dirty === 1,
      });
    }
    const servable = versions.some((v) => v.role === "timestamp" && v.state === "published");
    return {
      repo,
      settings,
      roles: out,
      targets: Number(count?.n ?? 0),
      servable,
      waiting: servable ? null : waitingFor(repo, out),
    };
  }

  /** A published metadata file by its served name: `timestamp.json`, `<role>.json` or `<N>.<role>.json`. */
  async readMetadata(repo: string, file: string): Promise<Buffer | undefined> {
    const m = /^(?:(\d{1,15})\.)?([A-Za-z][A-Za-z0-9._-]{0,127})\.json$/.exec(file);
    if (!m) return undefined;
    const row = await latestMeta(this.db, repo, m[2]!, m[1] === undefined ? undefined : Number(m[1]));
    return row?.body;
  }

  /** A target's bytes by path, or by `<dir>/<sha256>.<name>` (consistent snapshots). */
  async readTarget(repo: string, path: string): Promise<Buffer | undefined> {
    // A target whose own name looks hash-prefixed is served by its path: the exact path wins.
    const t = await this.db
      .selectFrom("updates_targets")
      .select("sha256")
      .where("repo", "=", repo)
      .where("path", "=", path)
      .executeTakeFirst();
    // Otherwise content-addressed: any version of any path is served by its hash (the client checks it).
    const sha = t?.sha256 ?? /^([0-9a-f]{64})\.(.+)$/.exec(path.slice(path.lastIndexOf("/") + 1))?.[1];
    if (!sha) return undefined;
    const b = await this.db
      .selectFrom("updates_blobs")
      .select("content")
      .where("repo", "=", repo)
      .where("sha256", "=", sha)
      .executeTakeFirst();
    return b?.content;
  }

  /**
   * Re-signs snapshot and timestamp before they expire (when less than `fraction` of their lifetime is
   * left), with online keys only. Returns what it published; roles whose keys it does not hold are skipped.
   */
  async refreshOnline(repo: string, fraction = 0.5): Promise<PublishResult> {
    const settings = await loadSettings(this.db, repo);
    const roles = await loadRoles(this.db, repo);
    const now = this.now();
    // A dirty snapshot or timestamp is a publish cut short: the job finishes it (publish() picks it up).
    const dirty = (role: "snapshot" | "timestamp") => roles.get(role)?.dirty === 1;
    const due = async (role: "snapshot" | "timestamp") => {
      const row = await latestMeta(this.db, repo, role);
      return !row || Number(row.expires_ms) - now < settings.expires[role] * 1000 * fraction;
    };
    const force: Array<"snapshot" | "timestamp"> = [];
    if (await due("snapshot")) force.push("snapshot");
    else if (await due("timestamp")) force.push("timestamp");
    if (force.length === 0 && !dirty("snapshot") && !dirty("timestamp"))
      return { published: [], pending: [] };
    const result = await this.publish(repo, { force });
    // Never leave an unsignable version behind as pending: the job signs only what it can finish. A role
    // that was dirty, or a timestamp behind the snapshot just published, is left dirty for the publish that
    // can finish it.
    for (const p of result.pending) {
      if (p.role === "snapshot" || p.role === "timestamp") {
        await this.db
          .deleteFrom("updates_metadata")
          .where("repo", "=", repo)
          .where("role", "=", p.role)
          .where("version", "=", p.version)
          .where("state", "=", "pending")
          .execute();
        const follows = p.role === "timestamp" && result.published.some((r) => r.role === "snapshot");
        if (dirty(p.role) || follows) await markDirty(this.db, repo, [p.role]);
      }
    }
    return { published: result.published, pending: [] };
  }

  private checkNewRole(roles: Map<string, RoleRow>, name: string, parent: string) {
    if (!nameRe.test(name)) fail("FR_UPDATES_ROLE", `role name "${name}" must match ${nameRe.source}`);
    if (roles.has(name)) fail("FR_UPDATES_ROLE", `role "${name}" already exists`);
    const p = roles.get(parent);
    if (!p || (p.kind === "top" && parent !== "targets"))
      fail("FR_UPDATES_ROLE", `parent "${parent}" is not a targets role`);
    if (p.succinct) fail("FR_UPDATES_ROLE", `"${parent}" delegates to hash bins and cannot delegate further`);
  }
}

function roleRow(
  repo: string,
  name: string,
  kind: string,
  parent: string | null,
  keyids: string[],
  threshold: number,
  expires: number,
  ord: number,
): RoleRow {
  return {
    repo,
    name,
    kind,
    parent,
    keyids: JSON.stringify(keyids),
    threshold,
    paths: null,
    terminating: 0,
    succinct: null,
    expires_s: expires,
    ord,
    dirty: 1,
  };
}

/** What an unserved repository waits for: the first root, then the first targets version (offline keys). */
function waitingFor(repo: string, roles: RoleStatus[]): string {
  for (const name of ["root", "targets"]) {
    const r = roles.find((x) => x.role === name);
    if (!r || r.version !== null) continue;
    if (r.pendingVersion === null)
      return `${name} has no signed version yet: run \`updates publish ${repo}\``;
    return (
      `${name} v${r.pendingVersion} is waiting for its offline signature (threshold ${r.threshold}, ` +
      `${r.heldKeys} key(s) held here): \`updates export ${repo} ${name}\`, sign it offline, ` +
      `\`updates import ${repo} FILE\`; until then no snapshot or timestamp is published`
    );
  }
  return `no timestamp is published yet: run \`updates publish ${repo}\``;
}

function checkThreshold(role: string, threshold: number, keys: number) {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys) {
    fail(
      "FR_UPDATES_ROLE",
      `${role}: threshold ${threshold} must be between 1 and its ${keys} distinct key(s)`,
    );
  }
}

/**
 * Whether a new root changes who signs top-level targets. A client checks targets against the newest root
 * (TUF 5.6.3), so the version it has must then be signed again — snapshot and timestamp follow a new root
 * anyway.
 */
function targetsKeysChanged(before: RootSigned, after: RootSigned): boolean {
  if (after.version <= before.version) return false;
  const a = before.roles.targets;
  const b = after.roles.targets;
  const ids = (r: RoleKeys) => [...r.keyids].sort().join(",");
  return a.threshold !== b.threshold || ids(a) !== ids(b);
}

/**
 * The roles a newly published version of `role` makes stale: snapshot after root or any targets role (it
 * lists their versions; a new root is followed by a new snapshot too), timestamp after snapshot, and for a
 * root whose targets keys changed (`before` → `after`), targets, which must be signed again by its new keys.
 */
function staleAfter(role: string, before?: RootSigned, after?: RootSigned): string[] {
  if (role === "timestamp") return [];
  if (role === "snapshot") return ["timestamp"];
  if (role === "root" && before && after && targetsKeysChanged(before, after)) return ["snapshot", "targets"];
  return ["snapshot"];
}

async function markDirty(db: DB, repo: string, roles: string[]) {
  if (roles.length === 0) return;
  await db
    .updateTable("updates_roles")
    .set({ dirty: 1 })
    .where("repo", "=", repo)
    .where("name", "in", roles)
    .execute();
}

/**
 * The role a new target is listed in: follow the delegation tree from `targets` (TUF 5.6.7 order:
 * preorder, first matching delegation, hash bins by the path's hash) down to the deepest match.
 */
export function assignRole(roles: Map<string, RoleRow>, path: string): string {
  let current = "targets";
  for (let depth = 0; depth < 32; depth++) {
    const r = roles.get(current)!;
    if (r.succinct) {
      current = binFor(JSON.parse(r.succinct) as { bit_length: number; name_prefix: string }, path);
      continue;
    }
    const child = [...roles.values()].find(
      (c) =>
        c.parent === current &&
        c.kind === "delegated" &&
        (JSON.parse(c.paths ?? "[]") as string[]).some((p) => pathMatches(p, path)),
    );
    if (!child) return current;
    current = child.name;
  }
  return current;
}
