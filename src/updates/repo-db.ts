import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { TufKey } from "./keys.js";
import type { UpdatesTables } from "./migrations.js";
import type { TopRole } from "./metadata.js";
import type { ResolvedKey } from "./signers.js";

export type RoleRow = UpdatesTables["updates_roles"];
export type MetaRow = UpdatesTables["updates_metadata"];
export type DB = Kysely<UpdatesTables>;

export interface RepoSettings {
  consistent_snapshot: boolean;
  /** Lifetime of each role's metadata in seconds; `delegated` applies to delegated roles and bins. */
  expires: Record<TopRole | "delegated", number>;
}

export const defaultExpiry: RepoSettings["expires"] = {
  root: 365 * 86400,
  targets: 90 * 86400,
  delegated: 90 * 86400,
  snapshot: 7 * 86400,
  timestamp: 86400,
};

export function tables(db: Kysely<object>): DB {
  return db.withTables<UpdatesTables>();
}

export async function loadSettings(db: DB, repo: string): Promise<RepoSettings> {
  const row = await db
    .selectFrom("updates_repos")
    .select("settings")
    .where("name", "=", repo)
    .executeTakeFirst();
  if (!row)
    return fail(
      "FR_UPDATES_REPO_NOT_FOUND",
      `no update repository "${repo}"; create it with \`fleetroot updates init ${repo} …\` (API: POST updates/${repo}/init)`,
    );
  return JSON.parse(row.settings) as RepoSettings;
}

export async function loadRoles(db: DB, repo: string): Promise<Map<string, RoleRow>> {
  const rows = await db
    .selectFrom("updates_roles")
    .selectAll()
    .where("repo", "=", repo)
    .orderBy("ord")
    .execute();
  return new Map(rows.map((r) => [r.name, r]));
}

export async function loadKeys(
  db: DB,
  repo: string,
  keyids?: readonly string[],
): Promise<Map<string, ResolvedKey>> {
  let q = db.selectFrom("updates_keys").selectAll().where("repo", "=", repo);
  if (keyids) {
    if (keyids.length === 0) return new Map();
    q = q.where("keyid", "in", [...keyids]);
  }
  const rows = await q.execute();
  return new Map(
    rows.map((r) => [r.keyid, { keyid: r.keyid, key: JSON.parse(r.key_json) as TufKey, uri: r.uri }]),
  );
}

export async function saveKeys(db: DB, repo: string, keys: readonly ResolvedKey[]): Promise<void> {
  for (const k of keys) {
    const row = { repo, keyid: k.keyid, key_json: JSON.stringify(k.key), uri: k.uri };
    await db
      .insertInto("updates_keys")
      .values(row)
      .onConflict((oc) => oc.columns(["repo", "keyid"]).doUpdateSet({ uri: k.uri ?? null }))
      .execute();
  }
}

/** The newest published row of a role (optionally a given version), or undefined. */
export async function latestMeta(
  db: DB,
  repo: string,
  role: string,
  version?: number,
): Promise<MetaRow | undefined> {
  let q = db
    .selectFrom("updates_metadata")
    .selectAll()
    .where("repo", "=", repo)
    .where("role", "=", role)
    .where("state", "=", "published");
  if (version !== undefined) q = q.where("version", "=", version);
  return q.orderBy("version", "desc").limit(1).executeTakeFirst();
}

/** The highest version of a role in any state (the next version is one more). */
export async function maxVersion(db: DB, repo: string, role: string): Promise<number> {
  const r = await db
    .selectFrom("updates_metadata")
    .select((eb) => eb.fn.max("version").as("v"))
    .where("repo", "=", repo)
    .where("role", "=", role)
    .executeTakeFirst();
  return Number(r?.v ?? 0);
}

export async function pendingMeta(db: DB, repo: string, role: string): Promise<MetaRow | undefined> {
  return db
    .selectFrom("updates_metadata")
    .selectAll()
    .where("repo", "=", repo)
    .where("role", "=", role)
    .where("state", "=", "pending")
    .orderBy("version", "desc")
    .limit(1)
    .executeTakeFirst();
}

/** Latest published version of every role, in one query (the snapshot needs all of them). */
export async function publishedVersions(db: DB, repo: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom("updates_metadata")
    .select(["role", (eb) => eb.fn.max("version").as("v")])
    .where("repo", "=", repo)
    .where("state", "=", "published")
    .groupBy("role")
    .execute();
  return new Map(rows.map((r) => [r.role, Number(r.v)]));
}
