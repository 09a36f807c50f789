import crypto from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchVerifiedTarget, updateTarget } from "../src/agent/update.js";
import { createKeyManager } from "../src/keys/index.js";
import {
  addSignatures,
  canonicalJson,
  parseEnvelope,
  serialize,
  tufKeyFromSpki,
  tufSigner,
  type Envelope,
} from "../src/updates/index.js";
import { tables } from "../src/updates/repo-db.js";
import { startUpdatesFixture, type UpdatesFixture } from "./updates-fixture.js";

let f: UpdatesFixture;
const api = (method: string, path: string, body?: unknown) =>
  fetch(`${f.url}/v1/${path}`, {
    method,
    headers: { "x-vault-token": f.token, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
const tmp = () => mkdtempSync(join(tmpdir(), "fr-tufjs-"));
const rootFile = async (repo: string, version = 1) => {
  const dir = tmp();
  const res = await fetch(`${f.url}/v1/updates/${repo}/metadata/${version}.root.json`);
  expect(res.status).toBe(200);
  writeFileSync(join(dir, "root.json"), Buffer.from(await res.arrayBuffer()));
  return dir;
};
const db = () => tables(f.t.server.core.store.db);
const latestRow = (repo: string, role: string) =>
  db()
    .selectFrom("updates_metadata")
    .selectAll()
    .where("repo", "=", repo)
    .where("role", "=", role)
    .where("state", "=", "published")
    .orderBy("version", "desc")
    .executeTakeFirstOrThrow();

beforeAll(async () => {
  f = await startUpdatesFixture();
  // One repository over HTTP with three TUF schemes: ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256.
  const init = await api("POST", "updates/fw/init", {
    keys: {
      root: [{ uri: f.key("fw-root"), generate: "ed25519" }],
      targets: [{ uri: f.key("fw-targets"), generate: "ecdsa-p256" }],
      snapshot: [{ uri: f.key("fw-snapshot"), generate: "rsa-2048" }],
      timestamp: [{ uri: f.key("fw-timestamp"), generate: "ed25519" }],
    },
  });
  expect(init.status, await init.clone().text()).toBe(200);
  const put = await api("PUT", "updates/fw/targets/app/v1.bin", {
    content_base64: Buffer.from("firmware v1").toString("base64"),
  });
  expect(put.status, await put.clone().text()).toBe(200);
  const pub = await api("POST", "updates/fw/publish");
  expect(pub.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await f?.close();
});

describe("tuf-js Updater against a Fleetroot repository over HTTP", () => {
  it("downloads a top-level target", async () => {
    const dir = await rootFile("fw");
    const u = f.updater("fw", dir);
    await u.refresh();
    const info = await u.getTargetInfo("app/v1.bin");
    expect(info?.length).toBe(11);
    const out = join(dir, "v1.bin");
    await u.downloadTarget(info!, out);
    expect(readFileSync(out, "utf8")).toBe("firmware v1");
  });

  it("downloads targets delegated to hash bins (TAP 15) and by path pattern", async () => {
    const r = f.repos;
    await r.init("bins", {
      keys: {
        root: [{ uri: f.key("b-root"), generate: "ed25519" }],
        targets: [{ uri: f.key("b-targets"), generate: "ed25519" }],
        snapshot: [{ uri: f.key("b-snap"), generate: "ed25519" }],
        timestamp: [{ uri: f.key("b-ts"), generate: "ed25519" }],
      },
    });
    await r.delegate("bins", {
      name: "robots",
      keys: [{ uri: f.key("b-robots"), generate: "ecdsa-p256" }],
      paths: ["robots/*"],
      terminating: true,
    });
    await r.delegateHashBins("bins", {
      parent: "robots",
      bitLength: 4,
      keys: [{ uri: f.key("b-bins"), generate: "ed25519" }],
    });
    const items = Array.from({ length: 40 }, (_, i) => ({
      path: `robots/pkg-${i}.tar`,
      content: Buffer.from(`package ${i}`),
    }));
    const added = await r.addTargets("bins", [...items, { path: "top.txt", content: Buffer.from("top") }]);
    expect(new Set(added.map((a) => a.role)).size).toBeGreaterThan(8);
    expect(added.find((a) => a.path === "top.txt")?.role).toBe("targets");
    const res = await r.publish("bins");
    expect(res.pending).toEqual([]);
    const dir = await rootFile("bins");
    const u = f.updater("bins", dir);
    await u.refresh();
    for (const i of [0, 17, 39]) {
      const info = await u.getTargetInfo(`robots/pkg-${i}.tar`);
      expect(info, `robots/pkg-${i}.tar`).toBeDefined();
      await u.downloadTarget(info!, join(dir, `pkg-${i}`));
      expect(readFileSync(join(dir, `pkg-${i}`), "utf8")).toBe(`package ${i}`);
    }
    // The terminating delegation hides paths outside it? No: robots/ only; top-level target is found.
    expect((await u.getTargetInfo("top.txt"))?.length).toBe(3);
    // A bin-role metadata file was fetched and persisted, encoded as tuf-js names it.
    expect(readdirSync(dir).some((n) => /^bins-[0-9a-f]\.json$/.test(n))).toBe(true);
  });

  it("refuses a tampered target and leaves no file behind", async () => {
    const row = await db()
      .selectFrom("updates_targets")
      .selectAll()
      .where("repo", "=", "fw")
      .where("path", "=", "app/v1.bin")
      .executeTakeFirstOrThrow();
    const set = (content: Buffer) =>
      db()
        .updateTable("updates_blobs")
        .set({ content })
        .where("repo", "=", "fw")
        .where("sha256", "=", row.sha256)
        .execute();
    const metadataDir = await rootFile("fw");
    const out = tmp();
    const opts = {
      repoUrl: `${f.url}/v1/updates/fw`,
      trustedRoot: join(metadataDir, "root.json"),
      metadataDir,
    };
    try {
      await set(Buffer.from("firmware v2")); // same length, other bytes
      await expect(updateTarget(opts, "app/v1.bin", out)).rejects.toMatchObject({
        code: "FR_UPDATES_VERIFY",
      });
      await set(Buffer.from("firmware v1 plus an endless stream of data".repeat(100)));
      await expect(updateTarget(opts, "app/v1.bin", out)).rejects.toThrow(/length|Max length/i);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      await set(Buffer.from("firmware v1"));
    }
    expect(readFileSync(await updateTarget(opts, "app/v1.bin", out), "utf8")).toBe("firmware v1");
  });

  it("refuses a rolled-back timestamp", async () => {
    const dir = await rootFile("fw");
    await f.repos.publish("fw", { force: ["timestamp"] });
    await f.updater("fw", dir).refresh();
    const newest = await latestRow("fw", "timestamp");
    await db()
      .deleteFrom("updates_metadata")
      .where("repo", "=", "fw")
      .where("role", "=", "timestamp")
      .where("version", "=", newest.version)
      .execute();
    await expect(f.updater("fw", dir).refresh()).rejects.toThrow(/version|rollback/i);
    await db().insertInto("updates_metadata").values(newest).execute();
    await f.updater("fw", dir).refresh();
  });

  it("refuses a timestamp that rolls the snapshot back", async () => {
    const dir = await rootFile("fw");
    await f.repos.publish("fw", { force: ["snapshot"] });
    await f.updater("fw", dir).refresh();
    const ts = await latestRow("fw", "timestamp");
    const env = parseEnvelope(ts.body, "timestamp");
    const snapMeta = env.signed.meta["snapshot.json"]!;
    const forged = {
      ...env.signed,
      version: env.signed.version + 1,
      meta: { "snapshot.json": { version: snapMeta.version - 1 } },
    };
    const keys = createKeyManager();
    // The dev server's file keys are encrypted under its barrier: sign through its own key manager.
    const signer = tufSigner(await f.t.server.core.keys.open(f.key("fw-timestamp")));
    await keys.close();
    const signed = await addSignatures({ signatures: [], signed: forged }, [signer]);
    await db()
      .insertInto("updates_metadata")
      .values({ ...ts, version: forged.version, body: serialize(signed) })
      .execute();
    try {
      await expect(f.updater("fw", dir).refresh()).rejects.toThrow(/snapshot|version/i);
    } finally {
      await db()
        .deleteFrom("updates_metadata")
        .where("repo", "=", "fw")
        .where("role", "=", "timestamp")
        .where("version", "=", forged.version)
        .execute();
    }
  });

  it("refuses an expired timestamp (freeze attack)", async () => {
    const real = f.clock.now().getTime();
    f.clock.set(real - 3 * 86400_000);
    await f.repos.publish("fw", { force: ["timestamp"] });
    f.clock.set(real);
    const dir = await rootFile("fw");
    await expect(f.updater("fw", dir).refresh()).rejects.toThrow(/expired/i);
    await f.repos.publish("fw", { force: ["timestamp"] });
    await f.updater("fw", dir).refresh();
  });

  it("refuses a snapshot that does not match the timestamp (mix-and-match)", async () => {
    await f.repos.publish("fw", { force: ["snapshot"] });
    const snap = await latestRow("fw", "snapshot");
    // Same signed content and signatures, other bytes: the timestamp's hash of snapshot.json no longer matches.
    const altered = Buffer.from(JSON.stringify(JSON.parse(snap.body.toString("utf8"))));
    await db()
      .updateTable("updates_metadata")
      .set({ body: altered })
      .where("repo", "=", "fw")
      .where("role", "=", "snapshot")
      .where("version", "=", snap.version)
      .execute();
    try {
      await expect(f.updater("fw", await rootFile("fw")).refresh()).rejects.toThrow(/hash|length/i);
    } finally {
      await db()
        .updateTable("updates_metadata")
        .set({ body: snap.body })
        .where("repo", "=", "fw")
        .where("role", "=", "snapshot")
        .where("version", "=", snap.version)
        .execute();
    }
  });

  it("refuses targets metadata signed by an untrusted key", async () => {
    const row = await latestRow("fw", "targets");
    const env = parseEnvelope(row.body, "targets");
    const keys = createKeyManager();
    const dir = tmp();
    const rogue = tufSigner(await keys.generate(`file:${join(dir, "rogue.pem")}`, "ecdsa-p256"));
    await keys.close();
    const forged = await addSignatures({ signatures: [], signed: env.signed }, [rogue]);
    await db()
      .updateTable("updates_metadata")
      .set({ body: serialize(forged) })
      .where("repo", "=", "fw")
      .where("role", "=", "targets")
      .where("version", "=", row.version)
      .execute();
    try {
      await expect(f.updater("fw", await rootFile("fw")).refresh()).rejects.toThrow(
        /signature|threshold|sign/i,
      );
    } finally {
      await db()
        .updateTable("updates_metadata")
        .set({ body: row.body })
        .where("repo", "=", "fw")
        .where("role", "=", "targets")
        .where("version", "=", row.version)
        .execute();
    }
  });

  it("follows a root rotation (1 → 2, timestamp key rotated)", async () => {
    await f.repos.init("rot", {
      keys: {
        root: [{ uri: f.key("r-root"), generate: "ed25519" }],
        targets: [{ uri: f.key("r-targets"), generate: "ed25519" }],
        snapshot: [{ uri: f.key("r-snap"), generate: "ed25519" }],
        timestamp: [{ uri: f.key("r-ts1"), generate: "ed25519" }],
      },
    });
    await f.repos.addTargets("rot", [{ path: "a.txt", content: Buffer.from("a") }]);
    await f.repos.publish("rot");
    const dir = await rootFile("rot");
    await f.updater("rot", dir).refresh();
    const oldTs = parseEnvelope(readFileSync(join(dir, "timestamp.json")), "timestamp");
    const oldKeyid = oldTs.signatures[0]!.keyid;
    const res = await f.repos.rotateKey("rot", {
      role: "timestamp",
      add: [{ uri: f.key("r-ts2"), generate: "ed25519" }],
      remove: [oldKeyid],
    });
    expect(res.published.map((p) => p.role)).toEqual(
      expect.arrayContaining(["root", "snapshot", "timestamp"]),
    );
    const u = f.updater("rot", dir);
    await u.refresh();
    const root = parseEnvelope(readFileSync(join(dir, "root.json")), "root");
    expect(root.signed.version).toBe(2);
    expect(root.signed.roles.timestamp.keyids).not.toContain(oldKeyid);
    const ts = parseEnvelope(readFileSync(join(dir, "timestamp.json")), "timestamp");
    expect(ts.signatures[0]!.keyid).not.toBe(oldKeyid);
    expect((await u.getTargetInfo("a.txt"))?.length).toBe(1);
  });

  it("re-signs targets when a root rotation changes its keys (held key swapped, offline root signed later)", async () => {
    await f.repos.init("rot-targets", {
      keys: {
        root: [{ uri: f.key("rt-root"), generate: "ed25519" }],
        targets: [{ uri: f.key("rt-targets1"), generate: "ed25519" }],
        snapshot: [{ uri: f.key("rt-snap"), generate: "ed25519" }],
        timestamp: [{ uri: f.key("rt-ts"), generate: "ed25519" }],
      },
    });
    await f.repos.addTargets("rot-targets", [{ path: "a.txt", content: Buffer.from("a") }]);
    await f.repos.publish("rot-targets");
    const dir = await rootFile("rot-targets");
    await f.updater("rot-targets", dir).refresh();
    const keyidOf = (file: string) =>
      parseEnvelope(readFileSync(join(dir, file)), "targets").signatures[0]!.keyid;
    const old = keyidOf("targets.json");
    const res = await f.repos.rotateKey("rot-targets", {
      role: "targets",
      add: [{ uri: f.key("rt-targets2"), generate: "ed25519" }],
      remove: [old],
    });
    // Before the fix only root, snapshot and timestamp moved: the served targets stayed signed by the removed
    // key and every client failed with "targets was signed by 0/1 keys".
    expect(res.published.map((p) => p.role)).toEqual(
      expect.arrayContaining(["root", "targets", "snapshot", "timestamp"]),
    );
    const u = f.updater("rot-targets", dir);
    await u.refresh();
    expect((await u.getTargetInfo("a.txt"))?.length).toBe(1);
    expect(keyidOf("targets.json")).not.toBe(old);

    // The same when the new root needs an offline signature: targets follows once the root is imported.
    const keys = createKeyManager();
    const offline = await keys.generate(`file:${join(tmp(), "rt-offline.pem")}`, "ed25519");
    const offlineKey = tufKeyFromSpki(offline.publicKey);
    await f.repos.rotateKey("rot-targets", {
      role: "root",
      add: [{ public: JSON.stringify(offlineKey) }],
      threshold: 2,
    });
    const current = keyidOf("targets.json");
    const pending = await f.repos.rotateKey("rot-targets", {
      role: "targets",
      add: [{ uri: f.key("rt-targets3"), generate: "ed25519" }],
      remove: [current],
    });
    // The pending root of the first call is replaced under the same number: a gap (1, 2, 4) would strand
    // every client at version 2.
    expect(pending.pending).toEqual([expect.objectContaining({ role: "root", version: 3 })]);
    const rootEnv = await f.repos.exportPending("rot-targets", "root");
    const imported = await f.repos.importSignatures(
      "rot-targets",
      serialize(await addSignatures(rootEnv, [tufSigner(offline)])),
    );
    await keys.close();
    expect(imported.published.map((p) => p.role)).toEqual(["root", "targets", "snapshot", "timestamp"]);
    const u2 = f.updater("rot-targets", dir);
    await u2.refresh();
    expect((await u2.getTargetInfo("a.txt"))?.length).toBe(1);
    expect(keyidOf("targets.json")).not.toBe(current);
  });

  it("refuses a new root not signed by a threshold of the old root's keys", async () => {
    const dir = await rootFile("rot");
    const v2 = await latestRow("rot", "root");
    const env = parseEnvelope(v2.body, "root");
    const keys = createKeyManager();
    const kdir = tmp();
    const newRoot = tufSigner(await keys.generate(`file:${join(kdir, "new-root.pem")}`, "ed25519"));
    await keys.close();
    const signed = {
      ...env.signed,
      version: env.signed.version + 1,
      keys: { ...env.signed.keys, [newRoot.keyid]: newRoot.key },
      roles: { ...env.signed.roles, root: { keyids: [newRoot.keyid], threshold: 1 } },
    };
    // Signed by the new root key only: valid under itself, not under the old root.
    const forged = await addSignatures({ signatures: [], signed }, [newRoot]);
    await db()
      .insertInto("updates_metadata")
      .values({ ...v2, version: signed.version, body: serialize(forged) })
      .execute();
    try {
      await expect(f.updater("rot", dir).refresh()).rejects.toThrow(/signature|threshold|sign/i);
    } finally {
      await db()
        .deleteFrom("updates_metadata")
        .where("repo", "=", "rot")
        .where("role", "=", "root")
        .where("version", "=", signed.version)
        .execute();
    }
  });

  it("refuses metadata signed by fewer keys than the threshold", async () => {
    const r = f.repos;
    const kdir = tmp();
    const local = createKeyManager();
    // Two targets keys, threshold 2: one held by the server, one offline (public key only).
    const offline = await local.generate(`file:${join(kdir, "offline-targets.pem")}`, "ed25519");
    const pem = crypto
      .createPublicKey({ key: Buffer.from(offline.publicKey), format: "der", type: "spki" })
      .export({ type: "spki", format: "pem" })
      .toString();
    const res = await r.init("thr", {
      keys: {
        root: [{ uri: f.key("t-root"), generate: "ed25519" }],
        targets: [{ uri: f.key("t-targets"), generate: "ed25519" }, { public: pem }],
        snapshot: [{ uri: f.key("t-snap"), generate: "ed25519" }],
        timestamp: [{ uri: f.key("t-ts"), generate: "ed25519" }],
      },
      thresholds: { targets: 2 },
    });
    expect(res.pending).toEqual([expect.objectContaining({ role: "targets", signatures: 1, threshold: 2 })]);
    // Serve the one-signature version as if it were published: the client must refuse it.
    await db()
      .updateTable("updates_metadata")
      .set({ state: "published" })
      .where("repo", "=", "thr")
      .where("role", "=", "targets")
      .execute();
    await r.publish("thr", { force: ["snapshot"] });
    await expect(f.updater("thr", await rootFile("thr")).refresh()).rejects.toThrow(/signed by 1\/2 keys/);
    await db()
      .updateTable("updates_metadata")
      .set({ state: "pending" })
      .where("repo", "=", "thr")
      .where("role", "=", "targets")
      .execute();
    // Offline flow: export, sign elsewhere with the second key, import → published, and accepted.
    const exported = await r.exportPending("thr", "targets");
    const signedElsewhere = await addSignatures(exported, [tufSigner(offline)]);
    await local.close();
    const imported = await r.importSignatures("thr", serialize(signedElsewhere));
    expect(imported.published.map((p) => p.role)).toEqual(
      expect.arrayContaining(["targets", "snapshot", "timestamp"]),
    );
    await f.updater("thr", await rootFile("thr")).refresh();
  });

  it("rejects bad input with clear errors and no partial files", async () => {
    await expect(f.repos.importSignatures("fw", "{not json")).rejects.toMatchObject({
      code: "FR_UPDATES_METADATA",
    });
    const row = await latestRow("fw", "targets");
    const wrongType = JSON.parse(row.body.toString("utf8")) as Envelope;
    (wrongType.signed as unknown as Record<string, unknown>)._type = "snapshot";
    await expect(f.repos.importSignatures("fw", JSON.stringify(wrongType))).rejects.toMatchObject({
      code: "FR_UPDATES_METADATA",
    });
    expect(() =>
      parseEnvelope(canonicalJson({ signed: { _type: "root" }, signatures: [] }), "targets"),
    ).toThrow(/_type/);
    // Unknown key type: a root listing a key of a type TUF does not define is refused.
    const rootRow = await latestRow("fw", "root");
    const badRoot = JSON.parse(rootRow.body.toString("utf8")) as Envelope;
    const keys = (badRoot.signed as unknown as { keys: Record<string, { keytype: string }> }).keys;
    const firstKey = Object.values(keys)[0]!;
    firstKey.keytype = "quantum-magic";
    expect(() => parseEnvelope(JSON.stringify(badRoot), "root")).toThrow(/unknown key type "quantum-magic"/);
    await expect(f.repos.importSignatures("fw", JSON.stringify(badRoot))).rejects.toMatchObject({
      code: "FR_UPDATES_METADATA",
    });
    // Malformed timestamp served: the agent reports it and writes nothing.
    const ts = await latestRow("fw", "timestamp");
    const metadataDir = await rootFile("fw");
    const out = tmp();
    const opts = {
      repoUrl: `${f.url}/v1/updates/fw`,
      trustedRoot: join(metadataDir, "root.json"),
      metadataDir,
    };
    const setTs = (body: Buffer) =>
      db()
        .updateTable("updates_metadata")
        .set({ body })
        .where("repo", "=", "fw")
        .where("role", "=", "timestamp")
        .where("version", "=", ts.version)
        .execute();
    try {
      await setTs(Buffer.from("{not json"));
      await expect(fetchVerifiedTarget(opts, "app/v1.bin")).rejects.toMatchObject({
        code: "FR_UPDATES_VERIFY",
      });
      // Endless data: a timestamp far beyond its size bound is cut off.
      await setTs(Buffer.alloc(200 * 1024, 0x20));
      await expect(fetchVerifiedTarget(opts, "app/v1.bin")).rejects.toThrow(/length|Max/i);
      expect(readdirSync(out)).toEqual([]);
      expect(existsSync(join(out, "v1.bin"))).toBe(false);
    } finally {
      await setTs(ts.body);
    }
    // A missing or malformed trusted root is refused before the metadata directory is made.
    const fresh = join(tmp(), "device");
    writeFileSync(join(out, "bad-root.json"), "{not json");
    for (const trustedRoot of [join(out, "no-root.json"), join(out, "bad-root.json")]) {
      const md = join(fresh, ".fleetroot-tuf");
      await expect(
        updateTarget(
          { repoUrl: `${f.url}/v1/updates/fw`, trustedRoot, metadataDir: md },
          "app/v1.bin",
          fresh,
        ),
      ).rejects.toMatchObject({ code: expect.stringMatching(/FR_UPDATES_(VERIFY|METADATA)/) });
      expect(existsSync(fresh)).toBe(false);
    }
  });
});

describe("management routes", () => {
  it("need a token, while metadata and targets are public", async () => {
    const put = await fetch(`${f.url}/v1/updates/fw/targets/x.bin`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content_base64: "eA==" }),
    });
    expect(put.status).toBe(403);
    expect((await fetch(`${f.url}/v1/updates/fw/status`)).status).toBe(403);
    expect((await fetch(`${f.url}/v1/updates/fw/metadata/timestamp.json`)).status).toBe(200);
    expect((await fetch(`${f.url}/v1/updates/fw/metadata/99.targets.json`)).status).toBe(404);
    const bad = await api("PUT", "updates/fw/targets/..%2Fescape", { content_base64: "eA==" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/FR_UPDATES_TARGET/);
  });
});
