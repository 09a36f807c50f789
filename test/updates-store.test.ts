import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createKeyManager,
  requestKeyPolicy,
  type KeyManager,
  type RequestKeyPolicy,
} from "../src/keys/index.js";
import {
  Lease,
  OnlineRefresher,
  parseEnvelope,
  UpdatesRepository,
  updatesMigrations,
} from "../src/updates/index.js";
import { ManualClock } from "../src/util/clock.js";
import { keysThatFailToSign } from "./helpers/failing-keys.js";
import { describeEachStore } from "./helpers/stores.js";

let keys: KeyManager;
let dir: string;
/** The test's key URIs stand for a request's: they live under `dir`. */
let requestKeys: RequestKeyPolicy;
beforeAll(() => {
  keys = createKeyManager();
  dir = mkdtempSync(join(tmpdir(), "fr-updates-store-"));
  requestKeys = requestKeyPolicy({ fileDirs: [dir], pkcs11Modules: [] });
});
afterAll(async () => {
  await keys.close();
});

describeEachStore("updates repository storage", (ctx) => {
  const clock = new ManualClock(Date.UTC(2026, 10, 23));
  const k = (n: string) => ({
    uri: `file:${join(dir, `${ctx.dialect}-${n}.pem`)}`,
    generate: "ed25519" as const,
  });

  it("keeps every version, survives a restart, and republishes only the changed bin", async () => {
    const store = await ctx.open([updatesMigrations]);
    const repos = new UpdatesRepository({ store, keys, clock, requestKeyPolicy: requestKeys });
    await repos.init("r", {
      keys: { root: [k("root")], targets: [k("t")], snapshot: [k("s")], timestamp: [k("ts")] },
    });
    await repos.delegateHashBins("r", { bitLength: 3, keys: [k("bins")] });
    await repos.addTargets(
      "r",
      Array.from({ length: 30 }, (_, i) => ({ path: `f/${i}`, content: Buffer.from(String(i)) })),
    );
    const first = await repos.publish("r");
    expect(first.published.filter((p) => p.role.startsWith("bins-"))).toHaveLength(8);
    const [added] = await repos.addTargets("r", [{ path: "f/new", content: Buffer.from("new") }]);
    const again = await repos.publish("r");
    expect(again.published.map((p) => p.role)).toEqual([added!.role, "snapshot", "timestamp"]);

    const restarted = new UpdatesRepository({
      store: await ctx.open([updatesMigrations]),
      keys,
      clock,
      requestKeyPolicy: requestKeys,
    });
    const ts = parseEnvelope((await restarted.readMetadata("r", "timestamp.json"))!, "timestamp");
    expect(ts.signed.version).toBe(3);
    const bin = parseEnvelope((await restarted.readMetadata("r", `2.${added!.role}.json`))!, "targets");
    expect(bin.signed.targets["f/new"]?.length).toBe(3);
    expect((await restarted.readTarget("r", "f/new"))?.toString()).toBe("new");
    expect((await restarted.readTarget("r", `f/${added!.sha256}.new`))?.toString()).toBe("new");
    const status = await restarted.status("r");
    expect(status.targets).toBe(31);
    expect(status.roles.find((r) => r.role === "timestamp")).toMatchObject({
      version: 3,
      heldKeys: 1,
      dirty: false,
    });
  });

  it("re-signs timestamp and snapshot before they expire; one node holds the lease", async () => {
    const store = await ctx.open([updatesMigrations]);
    const repos = new UpdatesRepository({ store, keys, clock, requestKeyPolicy: requestKeys });
    const a = new OnlineRefresher({ store, clock, repos, intervalMs: 60_000, holder: "node-a" });
    const b = new OnlineRefresher({
      store: await ctx.open([updatesMigrations]),
      clock,
      repos,
      intervalMs: 60_000,
      holder: "node-b",
    });
    expect(await a.runOnce()).toEqual({ r: { published: [], pending: [] } }); // fresh: nothing due
    expect(await b.runOnce()).toBeUndefined(); // node-a holds the lease
    clock.advance(13 * 3600_000); // timestamp (1 day) has less than half its life left
    const out = await a.runOnce();
    expect(out?.r?.published.map((p) => p.role)).toEqual(["timestamp"]);
    clock.advance(4 * 86400_000); // snapshot (7 days) due too; node-a's lease (3 min) expired: b takes over
    const byB = await b.runOnce();
    expect(byB?.r?.published.map((p) => p.role)).toEqual(["snapshot", "timestamp"]);
    expect(await new Lease({ store, clock }, "updates-refresh", "node-a").acquire(1000)).toBe(false);
  });

  it("never signs with offline keys: a job that cannot finish leaves nothing behind", async () => {
    const store = await ctx.open([updatesMigrations]);
    const repos = new UpdatesRepository({ store, keys, clock, requestKeyPolicy: requestKeys });
    const local = createKeyManager();
    const offline = await local.generate(`file:${join(dir, `${ctx.dialect}-offline-ts.pem`)}`, "ed25519");
    await local.close();
    const { createPublicKey } = await import("node:crypto");
    const pem = createPublicKey({ key: Buffer.from(offline.publicKey), format: "der", type: "spki" })
      .export({ type: "spki", format: "pem" })
      .toString();
    const res = await repos.init("off", {
      keys: { root: [k("oroot")], targets: [k("ot")], snapshot: [k("os")], timestamp: [{ public: pem }] },
    });
    expect(res.pending).toEqual([expect.objectContaining({ role: "timestamp", signatures: 0 })]);
    clock.advance(30 * 86400_000);
    const refresher = new OnlineRefresher({
      store,
      clock,
      repos,
      intervalMs: 60_000,
      holder: `x-${ctx.dialect}`,
    });
    await refresher.lease.release();
    const before = (await repos.status("off")).roles.find((r) => r.role === "timestamp");
    await new Lease({ store, clock }, "updates-refresh", `x-${ctx.dialect}`).acquire(1);
    await repos.refreshOnline("off");
    const after = (await repos.status("off")).roles.find((r) => r.role === "timestamp");
    expect(after).toMatchObject({ version: null, heldKeys: 0 });
    expect(before?.heldKeys).toBe(0);
  });

  it("a publish cut short after a targets version is finished by the next publish, or by the refresh job", async () => {
    const store = await ctx.open([updatesMigrations]);
    // The snapshot key stops signing while `down` is set (a token pulled out mid-publish).
    let down = false;
    const flaky = keysThatFailToSign(keys, "cut-snap", { failing: () => down });
    const repos = new UpdatesRepository({ store, keys: flaky, clock, requestKeyPolicy: requestKeys });
    await repos.init("cut", {
      keys: { root: [k("c-root")], targets: [k("c-t")], snapshot: [k("cut-snap")], timestamp: [k("c-ts")] },
    });
    const snapshotLists = async () =>
      parseEnvelope((await repos.readMetadata("cut", "snapshot.json"))!, "snapshot").signed.meta[
        "targets.json"
      ]?.version;
    const role = async (name: string) => (await repos.status("cut")).roles.find((r) => r.role === name);
    expect(await snapshotLists()).toBe(1);

    for (const finish of ["publish", "refresh"] as const) {
      await repos.addTargets("cut", [{ path: `app/${finish}`, content: Buffer.from(finish) }]);
      down = true;
      await expect(repos.publish("cut")).rejects.toMatchObject({ code: "FR_KEY_BACKEND" });
      // targets.json moved on; clients still see the last snapshot and timestamp, which agree.
      const targets = (await role("targets"))!.version!;
      expect(await snapshotLists()).toBe(targets - 1);
      expect(await role("snapshot")).toMatchObject({ dirty: true });
      down = false;
      const done = finish === "publish" ? await repos.publish("cut") : await repos.refreshOnline("cut");
      expect(done.published.map((p) => p.role)).toEqual(["snapshot", "timestamp"]);
      expect(await snapshotLists()).toBe(targets);
      const ts = parseEnvelope((await repos.readMetadata("cut", "timestamp.json"))!, "timestamp");
      expect(ts.signed.meta["snapshot.json"]?.version).toBe((await role("snapshot"))!.version);
      expect((await repos.status("cut")).roles.filter((r) => r.dirty)).toEqual([]);
      // Nothing is left to do: the next publish and refresh publish nothing.
      expect((await repos.publish("cut")).published).toEqual([]);
      expect((await repos.refreshOnline("cut")).published).toEqual([]);
    }
  });

  it("a request naming a key another request generated waits for that one to end before opening it", async () => {
    const store = await ctx.open([updatesMigrations]);
    const shared = k("race-shared");
    let generated!: () => void;
    const sharedMade = new Promise<void>((r) => (generated = r));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    // Request A's timestamp key fails to sign, but only once the gate opens: A holds the shared key it
    // generated until then, and removes it when it fails.
    const failing = keysThatFailToSign(keys, "race-broken", { before: () => gate });
    const flaky: KeyManager = {
      ...failing,
      generate: async (uri, alg) => {
        const s = await failing.generate(uri, alg);
        if (uri === shared.uri) generated();
        return s;
      },
    };
    const repos = new UpdatesRepository({ store, keys: flaky, clock, requestKeyPolicy: requestKeys });
    const a = repos.init("race-a", {
      keys: { root: [shared], targets: [k("ra-t")], snapshot: [k("ra-s")], timestamp: [k("race-broken")] },
    });
    const aFailed = expect(a).rejects.toMatchObject({ code: "FR_KEY_BACKEND" });
    await sharedMade;
    const b = repos.init("race-b", {
      keys: { root: [shared], targets: [k("rb-t")], snapshot: [k("rb-s")], timestamp: [k("rb-ts")] },
    });
    await new Promise((r) => setTimeout(r, 100)); // B reaches the shared key while A still holds it
    open();
    await aFailed;
    await b;
    // B generated its own key at the URI after A removed A's; the key there is the one B's root names.
    const root = (await repos.status("race-b")).roles.find((r) => r.role === "root");
    expect(root).toMatchObject({ keys: 1, heldKeys: 1 });
    expect((await repos.list()).filter((n) => n.startsWith("race-"))).toEqual(["race-b"]);
  });

  it("a rotation or init whose signing fails stores nothing and removes the keys and directories it made", async () => {
    const store = await ctx.open([updatesMigrations]);
    // A key that opens but cannot sign (a token pulled out between opening and signing).
    const flaky = keysThatFailToSign(keys, "broken");
    const repos = new UpdatesRepository({ store, keys: flaky, clock, requestKeyPolicy: requestKeys });
    await repos.init("atomic", {
      keys: { root: [k("a-root")], targets: [k("a-t")], snapshot: [k("a-s")], timestamp: [k("a-ts")] },
    });
    const before = await repos.status("atomic");
    const newDir = join(dir, `${ctx.dialect}-new`);
    const brokenKey = { uri: `file:${join(newDir, "sub", "broken.pem")}`, generate: "ed25519" as const };
    await expect(repos.rotateKey("atomic", { role: "targets", add: [brokenKey] })).rejects.toMatchObject({
      code: "FR_KEY_BACKEND",
    });
    expect(await repos.status("atomic")).toEqual(before);
    expect(await repos.readMetadata("atomic", "2.root.json")).toBeUndefined();
    expect(existsSync(newDir)).toBe(false);

    const fresh = { uri: `file:${join(newDir, "root.pem")}`, generate: "ed25519" as const };
    await expect(
      repos.init("atomic2", {
        keys: { root: [fresh], targets: [k("a2-t")], snapshot: [k("a2-s")], timestamp: [brokenKey] },
      }),
    ).rejects.toMatchObject({ code: "FR_KEY_BACKEND" });
    expect(await repos.list()).not.toContain("atomic2");
    expect(existsSync(newDir)).toBe(false);
    for (const n of ["a2-t", "a2-s"]) expect(existsSync(join(dir, `${ctx.dialect}-${n}.pem`)), n).toBe(false);
  });
});
