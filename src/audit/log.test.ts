import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile, appendFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Signer } from "../keys/types.js";
import { ManualClock } from "../util/clock.js";
import { GENESIS_PREV, lineHash } from "./format.js";
import { GroupSync } from "../util/group-sync.js";
import { AuditLog } from "./log.js";
import { testSigner } from "./test-signer.js";
import type { AuditEntry } from "./types.js";
import { verifyAuditLog } from "./verify.js";

let dir: string;
let path: string;
const clock = new ManualClock();
const signer = testSigner();
const ev = (i: number): AuditEntry => ({ type: "event", event: { name: "test.event", fields: { i } } });
const lines = async () =>
  (await readFile(path, "utf8"))
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-log-"));
  path = join(dir, "audit.log");
});
afterEach(async () => {
  await chmod(dir, 0o700).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("AuditLog", () => {
  it("writes a genesis line, chained entries and signed checkpoints that verify", async () => {
    const log = await AuditLog.open({ path, signer, clock, checkpointEvery: 3 });
    for (let i = 0; i < 7; i++) {
      clock.advance(1000);
      await log.log(ev(i));
    }
    await log.close();
    const raw = (await readFile(path, "utf8")).trimEnd().split("\n");
    const all = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(all[0]).toMatchObject({
      seq: 1,
      prev: GENESIS_PREV,
      type: "genesis",
      public_key: Buffer.from(signer.publicKey).toString("base64"),
    });
    all.forEach((l, i) => {
      expect(l.seq).toBe(i + 1);
      if (i > 0) expect(l.prev).toBe(lineHash(raw[i - 1] as string));
    });
    // genesis + 7 entries; interval checkpoints after every 3 lines, then the close checkpoint
    expect(
      all.map((l) =>
        l.type === "checkpoint" ? `cp:${String(l.reason)}:${String(l.count)}` : String(l.type),
      ),
    ).toEqual([
      "genesis",
      "event",
      "event",
      "cp:interval:3",
      "event",
      "event",
      "event",
      "cp:interval:3",
      "event",
      "event",
      "cp:close:2",
    ]);
    expect(all[1]).toMatchObject({
      time: new Date(Date.UTC(2026, 0, 1) + 1000).toISOString(),
      event: { fields: { i: 0 } },
    });
    const v = await verifyAuditLog(path, {});
    expect(v).toMatchObject({
      ok: true,
      entries: 7,
      checkpoints: 3,
      lastCheckpointSeq: 11,
      keySource: "genesis",
    });
    expect(v.unsignedTail).toBeUndefined();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("continues the chain of an existing file after reopen, marks the reopen with a signed checkpoint, and verifies", async () => {
    let log = await AuditLog.open({ path, signer, clock, checkpointEvery: 100 });
    await log.log(ev(1));
    await log.close();
    log = await AuditLog.open({ path, signer, clock, checkpointEvery: 100 });
    expect(log.lastSeq).toBe(3);
    await log.log(ev(2));
    await log.close();
    const all = await lines();
    expect(all.map((l) => [l.seq, l.type, l.reason])).toEqual([
      [1, "genesis", undefined],
      [2, "event", undefined],
      [3, "checkpoint", "close"],
      [4, "checkpoint", "open"],
      [5, "event", undefined],
      [6, "checkpoint", "close"],
    ]);
    expect(await verifyAuditLog(path, { publicKey: signer.publicKey, strict: true })).toMatchObject({
      ok: true,
      entries: 2,
      checkpoints: 3,
      keySource: "option",
    });
  });

  it("leaves a reopened log untouched when nothing is logged", async () => {
    const log = await AuditLog.open({ path, signer, clock });
    await log.log(ev(1));
    await log.close();
    const before = await readFile(path);
    await (await AuditLog.open({ path, signer, clock })).close();
    expect(await readFile(path)).toEqual(before);
  });

  it("signs a crash's unsigned tail at the next clean close even when nothing new is logged", async () => {
    const log = await AuditLog.open({ path, signer, clock, checkpointEvery: 100 });
    for (let i = 0; i < 2; i++) await log.log(ev(i));
    // the crash: no close(), so genesis and two entries follow no checkpoint
    expect((await verifyAuditLog(path, { strict: true })).problem?.kind).toBe("unsigned-tail");
    await (await AuditLog.open({ path, signer, clock, checkpointEvery: 100 })).close();
    const all = await lines();
    expect(all.slice(3).map((l) => [l.type, l.reason, l.count])).toEqual([
      ["checkpoint", "open", 3],
      ["checkpoint", "close", 0],
    ]);
    expect(await verifyAuditLog(path, { strict: true })).toMatchObject({ ok: true });
    // and a restart after that, with nothing logged, leaves the file as it is
    const before = await readFile(path);
    await (await AuditLog.open({ path, signer, clock })).close();
    expect(await readFile(path)).toEqual(before);
    await log.close().catch(() => undefined); // the "crashed" instance still holds a file handle
  });

  it("after a crash, drops a torn last line and picks up the unsigned tail in the next checkpoint", async () => {
    const log = await AuditLog.open({ path, signer, clock, checkpointEvery: 100 });
    for (let i = 0; i < 3; i++) await log.log(ev(i));
    // simulate the crash: no close(), and a write cut short
    await appendFile(path, '{"seq":5,"time":"2026-01');
    expect((await verifyAuditLog(path, {})).problem?.kind).toBe("malformed");
    const again = await AuditLog.open({ path, signer, clock, checkpointEvery: 100 });
    expect(again.lastSeq).toBe(4);
    await again.log(ev(9));
    await again.close();
    const all = await lines();
    expect(all[4]).toMatchObject({ seq: 5, type: "checkpoint", reason: "open", count: 4 });
    expect(await verifyAuditLog(path, { strict: true })).toMatchObject({ ok: true, entries: 4 });
    await log.close().catch(() => undefined); // the "crashed" instance still holds a file handle
  });

  it("keeps seq order strict and acknowledges each of 200 concurrent entries only once it is in the file", async () => {
    const log = await AuditLog.open({ path, signer, clock, checkpointEvery: 50 });
    const seenOnDisk: boolean[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        log
          .log({ type: "request", request: { id: `req-${i}`, operation: "read", path: "sys/health" } })
          .then(() => {
            seenOnDisk[i] = readFileSync(path, "utf8").includes(`"id":"req-${i}"`);
          }),
      ),
    );
    expect(seenOnDisk.filter(Boolean)).toHaveLength(200);
    await log.close();
    const all = await lines();
    const ids = all.filter((l) => l.type === "request").map((l) => (l.request as { id: string }).id);
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => `req-${i}`));
    expect(all.map((l) => l.seq)).toEqual(all.map((_, i) => i + 1));
    expect(await verifyAuditLog(path, { strict: true })).toMatchObject({
      ok: true,
      entries: 200,
      checkpoints: 5,
    });
  });

  it("chains lines of any size and script: non-ASCII paths, a 3 MB entry, then small ones again", async () => {
    const log = await AuditLog.open({ path, signer, clock, checkpointEvery: 7 });
    const paths = [
      "secret/data/Zürich",
      "fleet/drone-🚁-7",
      "ros2/ノード",
      "plain/path",
      "x".repeat(3_000_000),
    ];
    await Promise.all(
      paths.flatMap((p, i) => [
        log.log({ type: "request", request: { id: `a${i}`, operation: "read", path: p } }, false),
        log.log({ type: "request", request: { id: `b${i}`, operation: "read", path: p.slice(0, 40) } }),
      ]),
    );
    await log.close();
    const all = await lines();
    expect(all.filter((l) => l.type === "request").map((l) => (l.request as { path: string }).path)).toEqual(
      paths.flatMap((p) => [p, p.slice(0, 40)]),
    );
    const raw = readFileSync(path, "utf8").split("\n");
    for (let i = 1; i < all.length; i++) expect(all[i]!.prev).toBe(lineHash(raw[i - 1] as string));
    expect(await verifyAuditLog(path, { strict: true })).toMatchObject({ ok: true, entries: 10 });
  });

  it("a non-durable entry is in the file when log() resolves; durable ones share syncs (group commit)", async () => {
    const log = await AuditLog.open({ path, signer, clock });
    await log.log(ev(1), false);
    expect((await lines()).map((l) => l.type)).toEqual(["genesis", "event"]);
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.log(ev(100 + i))));
    const { writes, syncs, lines: n } = log.stats;
    expect(n).toBe(52);
    expect(writes).toBeLessThanOrEqual(3);
    expect(syncs).toBeLessThanOrEqual(writes);
    await log.close();
    expect((await verifyAuditLog(path)).ok).toBe(true);
  });

  it("writes a checkpoint on request only when something is new, and refuses entries after close", async () => {
    const log = await AuditLog.open({ path, signer, clock });
    await log.log(ev(1));
    await log.checkpoint();
    await log.checkpoint();
    expect((await lines()).map((l) => l.type)).toEqual(["genesis", "event", "checkpoint"]);
    await log.close();
    await log.close();
    await expect(log.log(ev(2))).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
  });

  it("rejects an invalid checkpointEvery", async () => {
    await expect(AuditLog.open({ path, signer, clock, checkpointEvery: 0 })).rejects.toMatchObject({
      code: "FR_CONFIG_INVALID",
    });
  });
});

describe("fail closed", () => {
  it("rejects log() with FR_AUDIT_FAILED when the disk is full (/dev/full), then refuses every later entry", async () => {
    const log = await AuditLog.open({ path: "/dev/full", signer, clock });
    const results = await Promise.allSettled([log.log(ev(1)), log.log(ev(2)), log.log(ev(3))]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "FR_AUDIT_FAILED" });
    }
    expect(String((results[0] as PromiseRejectedResult).reason.message)).toMatch(/ENOSPC/);
    await expect(log.log(ev(4))).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
    await expect(log.checkpoint()).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
    expect(log.failed?.code).toBe("FR_AUDIT_FAILED");
    await expect(log.close()).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
  });

  it("fails closed when the signer fails (HSM gone): nothing of the batch is acknowledged", async () => {
    let broken = false;
    const flaky: Signer = {
      ...signer,
      sign: (d, s) => (broken ? Promise.reject(new Error("token removed")) : signer.sign(d, s)),
    };
    const log = await AuditLog.open({ path, signer: flaky, clock, checkpointEvery: 2 });
    await log.log(ev(1)); // genesis + 1 entry: the first checkpoint is written
    broken = true;
    // ev(2) needs no signature; ev(3) completes the next interval, whose checkpoint cannot be signed
    await log.log(ev(2));
    const [b, c] = await Promise.allSettled([log.log(ev(3)), log.log(ev(5))]);
    expect(b).toMatchObject({ status: "rejected", reason: { code: "FR_AUDIT_FAILED" } });
    expect(c).toMatchObject({ status: "rejected", reason: { code: "FR_AUDIT_FAILED" } });
    await expect(log.log(ev(4))).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
    const written = await lines();
    expect(written.map((l) => l.type)).toEqual(["genesis", "event", "checkpoint", "event"]);
    expect(written.some((l) => (l.event as { fields?: { i?: number } } | undefined)?.fields?.i === 3)).toBe(
      false,
    );
    await log.close().catch(() => undefined);
  });

  it("fails closed when a background sync fails, though no one was waiting for it", async () => {
    const log = await AuditLog.open({ path, signer, clock });
    await log.log(ev(1));
    // The disk starts failing its syncs (EIO); reads, whose entries do not wait for a sync, notice it too.
    const failing = new GroupSync(() =>
      Promise.reject(Object.assign(new Error("i/o error"), { code: "EIO" })),
    );
    (log as unknown as { group: GroupSync }).group = failing;
    await log.log(ev(2), false); // written; its background sync fails
    await failing.settle();
    await expect(log.log(ev(3), false)).rejects.toMatchObject({ code: "FR_AUDIT_FAILED" });
    expect(String(log.failed?.message)).toMatch(/EIO/);
    await log.close().catch(() => undefined);
  });

  it("fails to open, with a clear error, when the path is a directory", async () => {
    const err = await AuditLog.open({ path: dir, signer, clock }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "FR_AUDIT_FILE" });
    expect(String((err as Error).message)).toMatch(/EISDIR/);
    expect(String((err as Error).message)).toContain(dir);
  });

  it("fails to open when the directory does not exist", async () => {
    await expect(
      AuditLog.open({ path: join(dir, "missing", "audit.log"), signer, clock }),
    ).rejects.toMatchObject({ code: "FR_AUDIT_FILE" });
  });

  it("fails to open when the directory cannot be written (a read-only directory, or /sys for root)", async () => {
    // Root ignores directory modes, so as root the test uses sysfs, where no one may create a file (EACCES).
    let target = "/sys/fleetroot-audit.log";
    if (process.getuid?.() !== 0) {
      const ro = join(dir, "ro");
      await mkdir(ro);
      await chmod(ro, 0o500);
      target = join(ro, "audit.log");
    }
    const err = await AuditLog.open({ path: target, signer, clock }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "FR_AUDIT_FILE" });
    expect(String((err as Error).message)).toContain(target);
    expect(String((err as Error).message)).toMatch(/EACCES/);
  });

  it("refuses to continue a log started with another audit key", async () => {
    const log = await AuditLog.open({ path, signer, clock });
    await log.log(ev(1));
    await log.close();
    const err = await AuditLog.open({ path, signer: testSigner("ed25519"), clock }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "FR_AUDIT_FILE" });
    expect(String((err as Error).message)).toMatch(/was started with audit key/);
  });

  it("refuses to continue a file that is not an audit log", async () => {
    await writeFile(path, "hello\nworld\n");
    await expect(AuditLog.open({ path, signer, clock })).rejects.toMatchObject({ code: "FR_AUDIT_TAMPERED" });
  });
});
