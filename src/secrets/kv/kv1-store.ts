import type { Kysely } from "kysely";
import type { KeyProtector } from "../../keys/types.js";
import type { Store } from "../../store/index.js";
import type { SecretsTables } from "../migrations.js";
import type { Mount } from "../mounts.js";
import { listUnder } from "./kv2-store.js";

const aad = (m: Mount, path: string) => `secrets/kv1/${m.uuid}/${path}`;

/** KV v1: one sealed value per key, no versions; the value is bound to its mount and path. */
export class Kv1Store {
  private readonly db: Kysely<SecretsTables>;

  constructor(
    store: Store,
    private readonly barrier: KeyProtector,
  ) {
    this.db = store.db.withTables<SecretsTables>();
  }

  async get(m: Mount, path: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.db
      .selectFrom("secrets_kv_key")
      .select("blob")
      .where("mount", "=", m.uuid)
      .where("path", "=", path)
      .executeTakeFirst();
    if (!row) return undefined;
    const plain = await this.barrier.decrypt(aad(m, path), new Uint8Array(row.blob));
    return JSON.parse(Buffer.from(plain).toString("utf8")) as Record<string, unknown>;
  }

  async put(m: Mount, path: string, data: Record<string, unknown>): Promise<void> {
    const blob = Buffer.from(
      await this.barrier.encrypt(aad(m, path), Buffer.from(JSON.stringify(data), "utf8")),
    );
    await this.db
      .insertInto("secrets_kv_key")
      .values({ mount: m.uuid, path, rev: 1, blob })
      .onConflict((oc) => oc.columns(["mount", "path"]).doUpdateSet({ blob }))
      .execute();
  }

  async delete(m: Mount, path: string): Promise<void> {
    await this.db.deleteFrom("secrets_kv_key").where("mount", "=", m.uuid).where("path", "=", path).execute();
  }

  list(m: Mount, prefix: string): Promise<string[]> {
    return listUnder(this.db, m, prefix);
  }
}
