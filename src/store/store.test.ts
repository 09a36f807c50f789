import { sql, type Kysely, type Migration } from "kysely";
import net, { type AddressInfo, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { FleetError } from "../errors/index.js";
import { bigintType, blobType, dialectOf, openStore, type MigrationSet } from "./index.js";
import { PreparedQuery } from "./prepared.js";

// A type alias, not an interface: withTables<> needs an index-compatible type.
type T = {
  items: { id: string; n: number; data: Buffer; note: string | null };
  fleetroot_migration: { name: string };
};

const createItems: Migration = {
  async up(db: Kysely<unknown>) {
    const d = dialectOf(db);
    await db.schema
      .createTable("items")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("n", bigintType(d), (c) => c.notNull())
      .addColumn("data", blobType(d), (c) => c.notNull())
      .addColumn("note", "text")
      .execute();
  },
};
const base: MigrationSet = { "9000_items": createItems };

async function tableExists(db: Kysely<object>, name: string, dialect: string): Promise<boolean> {
  const q =
    dialect === "sqlite"
      ? sql<{ c: number }>`select count(*) as c from sqlite_master where type = 'table' and name = ${name}`
      : sql<{
          c: number;
        }>`select count(*)::int as c from information_schema.tables where table_name = ${name}`;
  const r = await q.execute(db);
  return Number(r.rows[0]?.c) > 0;
}

function expectCode(e: unknown, code: string): FleetError {
  expect(e).toBeInstanceOf(FleetError);
  expect((e as FleetError).code).toBe(code);
  return e as FleetError;
}

describeEachStore("store", (ctx) => {
  it("applies migrations once and is idempotent on re-open", async () => {
    await ctx.fresh();
    let runs = 0;
    const counted: MigrationSet = {
      "9001_count": {
        async up(db) {
          runs++;
          await db.schema.createTable("counted").addColumn("x", "text").execute();
        },
      },
    };
    const a = await ctx.open([base, counted]);
    expect(a.dialect).toBe(ctx.dialect);
    await a.close();
    const b = await ctx.open([counted, base]);
    expect(runs).toBe(1);
    const applied = await b.db
      .withTables<T>()
      .selectFrom("fleetroot_migration")
      .select("name")
      .orderBy("name")
      .execute();
    expect(applied.map((r) => r.name)).toEqual(["9000_items", "9001_count"]);
  });

  it("a failing migration names itself and leaves no trace, earlier ones stay", async () => {
    await ctx.fresh();
    const broken: MigrationSet = {
      "9002_broken": {
        async up(db) {
          await db.schema.createTable("half").addColumn("x", "text").execute();
          await sql`insert into half (x) values ('written')`.execute(db);
          await sql`select * from no_such_table`.execute(db);
        },
      },
    };
    const err = await ctx.open([base, broken]).catch((e: unknown) => e);
    const fe = expectCode(err, "FR_STORE_MIGRATION");
    expect(fe.message).toContain("9002_broken");

    const s = await ctx.open([base]);
    expect(await tableExists(s.db, "half", ctx.dialect)).toBe(false);
    expect(await tableExists(s.db, "items", ctx.dialect)).toBe(true);
    const applied = await s.db.withTables<T>().selectFrom("fleetroot_migration").select("name").execute();
    expect(applied.map((r) => r.name)).toEqual(["9000_items"]);
  });

  it("rolls back a failed transaction completely", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const boom = new Error("boom");
    await expect(
      s.transaction(async (trx) => {
        const t = trx.withTables<T>();
        await t
          .insertInto("items")
          .values({ id: "a", n: 1, data: Buffer.from("x"), note: null })
          .execute();
        await t
          .insertInto("items")
          .values({ id: "b", n: 2, data: Buffer.from("y"), note: null })
          .execute();
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await db.selectFrom("items").selectAll().execute()).toEqual([]);

    const r = await s.transaction(async (trx) => {
      await trx
        .withTables<T>()
        .insertInto("items")
        .values({ id: "c", n: 3, data: Buffer.alloc(1), note: null })
        .execute();
      return "done";
    });
    expect(r).toBe("done");
    expect((await db.selectFrom("items").select("id").execute()).map((x) => x.id)).toEqual(["c"]);
  });

  it("a transaction used after it ended runs nothing; prepared writes in a failed one roll back", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const ins = new PreparedQuery<T, never>(3, (k, id, n, data) =>
      k.insertInto("items").values({
        id,
        n: n as unknown as number,
        data: data as unknown as Buffer,
      }),
    );
    let kept: Kysely<T> | undefined;
    await s.transaction(async (trx) => {
      kept = trx.withTables<T>();
      await ins.execute(kept, "in", 1, Buffer.alloc(1));
    });
    // Another transaction is open while the stale one is tried: nothing may land in it either.
    await s.transaction(async (trx) => {
      const late = await ins.execute(kept!, "late-prepared", 2, Buffer.alloc(1)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(late).toBeInstanceOf(Error);
      // Kysely's own transactions (PostgreSQL) throw its plain Error; the SQLite path a typed one.
      if (ctx.dialect === "sqlite") expectCode(late, "FR_INTERNAL");
      await expect(
        kept!
          .insertInto("items")
          .values({ id: "late-builder", n: 3, data: Buffer.alloc(1), note: null })
          .execute(),
      ).rejects.toThrow();
      await ins.execute(trx.withTables<T>(), "second", 4, Buffer.alloc(1));
    });
    const boom = new Error("boom");
    await expect(
      s.transaction(async (trx) => {
        await ins.execute(trx.withTables<T>(), "rolled-back", 5, Buffer.alloc(1));
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await db.selectFrom("items").select("id").orderBy("id").execute()).map((r) => r.id)).toEqual([
      "in",
      "second",
    ]);
  });

  it("keeps concurrent transactions and single writes isolated, and all of them land", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    // 40 transactions that each write two rows across an await, interleaved with 40 single inserts and
    // reads: no transaction sees another's half, every row is there afterwards (group commit on SQLite).
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await s.transaction(async (trx) => {
          const t = trx.withTables<T>();
          await t
            .insertInto("items")
            .values({ id: `t${i}a`, n: i, data: Buffer.alloc(1), note: null })
            .execute();
          await new Promise((r) => setImmediate(r));
          await t
            .insertInto("items")
            .values({ id: `t${i}b`, n: i, data: Buffer.alloc(1), note: null })
            .execute();
        });
        await db
          .insertInto("items")
          .values({ id: `s${i}`, n: i, data: Buffer.alloc(1), note: null })
          .execute();
        const rows = await db.selectFrom("items").select("id").where("id", "like", "t%").execute();
        seen.push(rows.length);
      }),
    );
    for (const n of seen) expect(n % 2).toBe(0);
    const all = await db.selectFrom("items").select("id").execute();
    expect(all).toHaveLength(120);
    await s.close();
    const again = await ctx.open([base]);
    expect(await again.db.withTables<T>().selectFrom("items").select("id").execute()).toHaveLength(120);
  });

  it("runs a prepared query with its parameters bound where the builder put them, in and out of transactions", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    for (const [id, n] of [
      ["a", 1],
      ["b", 2],
      ["c", 2],
    ] as const)
      await db
        .insertInto("items")
        .values({ id, n, data: Buffer.from(id), note: null })
        .execute();
    // The builder uses its second sentinel first, so binding must follow the SQL, not the argument list.
    const q = new PreparedQuery<T, { id: string }>(2, (k, minN, notId) =>
      k
        .selectFrom("items")
        .select("id")
        .where("id", "!=", notId)
        .where("n", ">=", minN as unknown as number)
        .orderBy("id"),
    );
    expect((await q.run(db, 2, "b")).map((r) => r.id)).toEqual(["c"]);
    expect((await q.run(db, 1, "c")).map((r) => r.id)).toEqual(["a", "b"]);
    const inTrx = await s.transaction(async (trx) => q.run(trx.withTables<T>(), 1, "a"));
    expect(inTrx.map((r) => r.id)).toEqual(["b", "c"]);
    const upd = new PreparedQuery<T, never>(2, (k, note, id) =>
      k.updateTable("items").set({ note }).where("id", "=", id),
    );
    expect(Number((await upd.execute(db, "x", "a")).numAffectedRows)).toBe(1);
    expect(Number((await upd.execute(db, "x", "zz")).numAffectedRows)).toBe(0);
  });

  it("a prepared query outside a transaction never sees another transaction's uncommitted rows", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const q = new PreparedQuery<T, { id: string }>(1, (k, id) =>
      k.selectFrom("items").select("id").where("id", "=", id),
    );
    const w = new PreparedQuery<T, never>(3, (k, id, n, data) =>
      k.insertInto("items").values({
        id,
        n: n as unknown as number,
        data: data as unknown as Buffer,
        note: id,
      }),
    );
    let during: Promise<Array<{ id: string }>> | undefined;
    let written: Promise<unknown> | undefined;
    const failed = await s
      .transaction(async (trx) => {
        await trx
          .withTables<T>()
          .insertInto("items")
          .values({ id: "uncommitted", n: 1, data: Buffer.alloc(1), note: null })
          .execute();
        during = q.run(db, "uncommitted");
        written = w.execute(db, "outside", 1, Buffer.alloc(1));
        await new Promise((r) => setTimeout(r, 20));
        throw new Error("roll back");
      })
      .catch((e: Error) => e.message);
    expect(failed).toBe("roll back");
    expect(await during).toEqual([]);
    await written;
    expect(await q.run(db, "outside")).toEqual([{ id: "outside" }]);
    expect(await q.run(db, "uncommitted")).toEqual([]);
  });

  it("transactions asked for together: each sees those before it, a failing one undoes only itself", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const row = (id: string, n: number) => ({ id, n, data: Buffer.alloc(1), note: null });
    const before = s.stats?.();
    const boom = new Error("boom");
    const seenBy: number[] = [];
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        s.transaction(async (trx) => {
          const t = trx.withTables<T>();
          // Each counts the rows written by those that ran before it, then adds its own two.
          const c = await t
            .selectFrom("items")
            .select((eb) => eb.fn.countAll().as("c"))
            .executeTakeFirstOrThrow();
          seenBy.push(Number(c.c));
          await t
            .insertInto("items")
            .values(row(`x${i}a`, i))
            .execute();
          if (i === 0) await new Promise((r) => setImmediate(r)); // the others queue meanwhile
          await t
            .insertInto("items")
            .values(row(`x${i}b`, i))
            .execute();
          if (i % 4 === 3) throw boom; // after writing: its rows must go, nobody else's
          return i;
        }),
      ),
    );
    outcomes.forEach((o, i) => {
      if (i % 4 === 3) expect(o).toEqual({ status: "rejected", reason: boom });
      else expect(o).toEqual({ status: "fulfilled", value: i });
    });
    if (s.dialect === "sqlite") {
      // One connection, so serial order: the k-th sees 2 rows for every earlier one that succeeded.
      const expected: number[] = [];
      for (let i = 0, n = 0; i < 12; i++) {
        expected.push(n);
        if (i % 4 !== 3) n += 2;
      }
      expect(seenBy).toEqual(expected);
    } else {
      for (const n of seenBy) expect(n % 2).toBe(0); // never half of another's
    }
    const ids = (await db.selectFrom("items").select("id").orderBy("id").execute()).map((r) => r.id);
    expect(ids).toEqual(
      Array.from({ length: 12 }, (_, i) => i)
        .filter((i) => i % 4 !== 3)
        .flatMap((i) => [`x${i}a`, `x${i}b`])
        .sort(),
    );
    if (s.dialect === "sqlite") {
      // They shared commits: fewer commits than transactions (one for the first, one for those queued).
      expect(s.stats!().commits - before!.commits).toBeLessThan(9);
    }
    await s.close();
    const again = await ctx.open([base]);
    expect(await again.db.withTables<T>().selectFrom("items").select("id").execute()).toHaveLength(
      ids.length,
    );
  });

  it("transactionCommitted hands back the result at commit and a promise of durability", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const before = s.stats?.();
    const c = await s.transactionCommitted(async (trx) => {
      await trx
        .withTables<T>()
        .insertInto("items")
        .values({ id: "early", n: 1, data: Buffer.alloc(1), note: null })
        .execute();
      return "written";
    });
    expect(c.result).toBe("written");
    // Committed: visible to everyone now, durable once `durable` resolves.
    expect((await db.selectFrom("items").select("id").execute()).map((r) => r.id)).toEqual(["early"]);
    await c.durable;
    if (s.dialect === "sqlite") {
      const after = s.stats!();
      expect(after.commits).toBe(before!.commits + 1);
      expect(after.syncs).toBeGreaterThan(before!.syncs);
    }
    const boom = new Error("boom");
    await expect(
      s.transactionCommitted(async (trx) => {
        await trx
          .withTables<T>()
          .insertInto("items")
          .values({ id: "never", n: 2, data: Buffer.alloc(1), note: null })
          .execute();
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await db.selectFrom("items").select("id").execute()).map((r) => r.id)).toEqual(["early"]);
  });

  it("when the database ends a transaction itself, every transaction that shared its commit fails (SQLite)", async () => {
    if (ctx.dialect !== "sqlite") return; // PostgreSQL runs each transaction on its own connection
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const row = (id: string) => ({ id, n: 1, data: Buffer.alloc(1), note: null });
    const outcomes = await Promise.allSettled([
      s.transaction(async (trx) => {
        await trx.withTables<T>().insertInto("items").values(row("first")).execute();
        await new Promise((r) => setImmediate(r));
      }),
      s.transaction(async (trx) => {
        await trx.withTables<T>().insertInto("items").values(row("second")).execute();
      }),
      s.transaction(async (trx) => {
        // What SQLite does on an I/O error or a full disk: the whole transaction is rolled back.
        await sql`rollback`.execute(trx);
      }),
      s.transaction(async (trx) => {
        await trx.withTables<T>().insertInto("items").values(row("after")).execute();
      }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected", "fulfilled"]);
    expect((await db.selectFrom("items").select("id").execute()).map((r) => r.id)).toEqual(["after"]);
  });

  it("a write with RETURNING outside a transaction is acknowledged only once synced (SQLite)", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    await db
      .insertInto("items")
      .values({ id: "r", n: 1, data: Buffer.alloc(1), note: null })
      .execute();
    const before = s.stats?.();
    const rows = await db.updateTable("items").set({ n: 2 }).where("id", "=", "r").returning("n").execute();
    expect(rows).toEqual([{ n: 2 }]);
    if (s.dialect === "sqlite") {
      const after = s.stats!();
      expect(after.commits).toBe(before!.commits + 1);
      expect(after.syncs).toBeGreaterThan(before!.syncs);
    } else {
      expect(s.stats).toBeUndefined(); // PostgreSQL syncs its own commits
    }
  });

  it("the change stamp (SQLite) moves with every write, this store's or another connection's, and only then", async () => {
    await ctx.fresh();
    const a = await ctx.open([base]);
    const b = await ctx.open([base]); // a second connection to the same database: another process or node
    if (ctx.dialect === "postgres") {
      // Other nodes' commits cannot be seen without a query: PostgreSQL stores offer no stamp.
      expect(a.changeStamp).toBeUndefined();
      return;
    }
    const stamp = () => a.changeStamp!();
    const items = a.db.withTables<T>();
    const s0 = stamp();
    await items.selectFrom("items").selectAll().execute();
    await sql`select 1`.execute(a.db);
    expect(stamp()).toBe(s0); // reads change nothing
    await items
      .insertInto("items")
      .values({ id: "s1", n: 1, data: Buffer.alloc(1), note: null })
      .execute();
    const s1 = stamp();
    expect(s1).not.toBe(s0);
    expect(stamp()).toBe(s1);
    // A transaction, even one that writes nothing and rolls back, may have changed something meanwhile.
    await a.transaction(async () => undefined);
    const s2 = stamp();
    expect(s2).not.toBe(s1);
    await expect(
      a.transaction(async (trx) => {
        await trx.withTables<T>().updateTable("items").set({ n: 2 }).where("id", "=", "s1").execute();
        throw new Error("undo");
      }),
    ).rejects.toThrow("undo");
    const s3 = stamp();
    expect(s3).not.toBe(s2);
    // Another connection's commit: this connection ran nothing, and the stamp still moves.
    await b.db.withTables<T>().updateTable("items").set({ n: 3 }).where("id", "=", "s1").execute();
    const s4 = stamp();
    expect(s4).not.toBe(s3);
    expect(stamp()).toBe(s4);
    await b.transaction(async (trx) => {
      await trx.withTables<T>().deleteFrom("items").where("id", "=", "s1").execute();
    });
    expect(stamp()).not.toBe(s4);
  });

  it("round-trips blob, bigint and text", async () => {
    await ctx.fresh();
    const s = await ctx.open([base]);
    const db = s.db.withTables<T>();
    const data = Buffer.from([0, 1, 2, 255, 0, 128]);
    const big = 1_767_225_600_123; // ms timestamp beyond 32 bits
    const note = "ünïcødé \u{1F510} 'quoted'";
    await db.insertInto("items").values({ id: "k", n: big, data, note }).execute();
    const row = await db.selectFrom("items").selectAll().where("id", "=", "k").executeTakeFirstOrThrow();
    expect(row.n).toBe(big);
    expect(typeof row.n).toBe("number");
    expect(Buffer.isBuffer(row.data)).toBe(true);
    expect(Buffer.compare(row.data, data)).toBe(0);
    expect(row.note).toBe(note);
    const cnt = await db
      .selectFrom("items")
      .select((eb) => eb.fn.countAll().as("c"))
      .executeTakeFirstOrThrow();
    expect(Number(cnt.c)).toBe(1);
    if (ctx.dialect === "postgres") {
      // count(*) is int8 and sum() is numeric on PostgreSQL: both must come back as numbers.
      const agg = await sql<{ c: unknown; s: unknown }>`select count(*) as c, sum(n) as s from items`.execute(
        s.db,
      );
      expect(agg.rows[0]).toEqual({ c: 1, s: big });
    }
  });
});

describe("store errors", () => {
  it("PostgreSQL unreachable is FR_STORE_UNAVAILABLE naming host:port, quickly, without the password", async () => {
    const t0 = performance.now();
    const err = await openStore("postgres://fr:s3cretpw@127.0.0.1:1/fleet", { migrations: [] }).catch(
      (e: unknown) => e,
    );
    const fe = expectCode(err, "FR_STORE_UNAVAILABLE");
    expect(fe.message).toContain("127.0.0.1:1");
    expect(fe.message).not.toContain("s3cretpw");
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("a server that never answers times out within connectTimeoutMs", async () => {
    const sockets: Socket[] = [];
    const srv = net.createServer((sock) => sockets.push(sock)); // accepts, never speaks
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const t0 = performance.now();
      const err = await openStore(`postgres://postgres@127.0.0.1:${port}/x`, {
        migrations: [],
        connectTimeoutMs: 300,
      }).catch((e: unknown) => e);
      expect(expectCode(err, "FR_STORE_UNAVAILABLE").message).toContain(`127.0.0.1:${port}`);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    }
  });

  it("an unsupported URL is FR_STORE_URL naming the scheme", async () => {
    const err = await openStore("mysql://root@localhost/db", { migrations: [] }).catch((e: unknown) => e);
    expect(expectCode(err, "FR_STORE_URL").message).toContain('"mysql"');
    const err2 = await openStore("just-a-path.db", { migrations: [] }).catch((e: unknown) => e);
    expectCode(err2, "FR_STORE_URL");
  });

  it("a bad percent-escape in a postgres URL is FR_STORE_URL, not a bare URIError", async () => {
    for (const url of ["postgres://postgres@127.0.0.1:5432/te%zzst", "postgres://us%zz@127.0.0.1"]) {
      const err = await openStore(url, { migrations: [] }).catch((e: unknown) => e);
      expect(expectCode(err, "FR_STORE_URL").message).toContain("percent-escape");
    }
  });

  it("sqlite::memory: works", async () => {
    const s = await openStore("sqlite::memory:", { migrations: [base] });
    await s.db
      .withTables<T>()
      .insertInto("items")
      .values({ id: "m", n: 1, data: Buffer.alloc(0), note: null })
      .execute();
    expect(await s.db.withTables<T>().selectFrom("items").select("id").execute()).toEqual([{ id: "m" }]);
    await s.close();
  });
});
