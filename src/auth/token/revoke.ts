import type { Kysely, Transaction } from "kysely";
import { dialectOf } from "../../store/index.js";
import type { AuthTables } from "../migrations.js";

/**
 * Deletes the given tokens and every descendant; returns the hashes removed. On PostgreSQL each level is
 * locked (FOR UPDATE) before its children are read, and a child is created under a parent locked FOR
 * SHARE (TokenStore.insert): a child committed while its parent is being revoked is either seen by the
 * walk or refused, never left behind without a parent. SQLite runs one write transaction at a time.
 */
export async function revokeSubtree(trx: Transaction<object>, roots: readonly string[]): Promise<string[]> {
  const t = trx.withTables<AuthTables>();
  const pg = dialectOf(trx as unknown as Kysely<unknown>) === "postgres";
  const all: string[] = [];
  const seen = new Set<string>();
  let level = roots.filter((h) => !seen.has(h) && seen.add(h));
  if (pg) {
    for (let i = 0; i < level.length; i += 500) {
      await t
        .selectFrom("auth_token")
        .select("hash")
        .where("hash", "in", level.slice(i, i + 500))
        .orderBy("hash")
        .forUpdate()
        .execute();
    }
  }
  while (level.length > 0) {
    all.push(...level);
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 500) {
      const q = t
        .selectFrom("auth_token")
        .select("hash")
        .where("parent_hash", "in", level.slice(i, i + 500));
      const kids = await (pg ? q.orderBy("hash").forUpdate() : q).execute();
      for (const k of kids) if (!seen.has(k.hash)) next.push((seen.add(k.hash), k.hash));
    }
    level = next;
  }
  for (let i = 0; i < all.length; i += 500) {
    await t
      .deleteFrom("auth_token")
      .where("hash", "in", all.slice(i, i + 500))
      .execute();
  }
  return all;
}
