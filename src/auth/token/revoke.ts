import type { Transaction } from "kysely";
import type { AuthTables } from "../migrations.js";

/** Deletes the given tokens and every descendant; returns the hashes removed. */
export async function revokeSubtree(trx: Transaction<object>, roots: readonly string[]): Promise<string[]> {
  const t = trx.withTables<AuthTables>();
  const all: string[] = [];
  const seen = new Set<string>();
  let level = roots.filter((h) => !seen.has(h) && seen.add(h));
  while (level.length > 0) {
    all.push(...level);
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 500) {
      const kids = await t
        .selectFrom("auth_token")
        .select("hash")
        .where("parent_hash", "in", level.slice(i, i + 500))
        .execute();
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
