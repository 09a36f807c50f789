import { existsSync } from "node:fs";
import { mkdtemp, readFile, rename, rm, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { ManualClock } from "../util/clock.js";
import { auditMigrations, readAuditAnchor, writeAuditAnchor, type AuditAnchor } from "./anchor.js";
import { lineHash } from "./format.js";
import { AuditLog } from "./log.js";
import { testSigner } from "./test-signer.js";
import type { AuditEntry } from "./types.js";
import { verifyAuditLog } from "./verify.js";

const clock = new ManualClock();
const signer = testSigner();
const ev = (i: number): AuditEntry => ({ type: "event", event: { name: "test.event", fields: { i } } });

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-anchor-"));
  path = join(dir, "audit.log");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `n` entries through a log that records its anchors; returns the anchors in the order recorded. */
async function writeLog(n: number, anchor?: AuditAnchor, checkpointEvery = 4): Promise<AuditAnchor[]> {
  const anchors: AuditAnchor[] = [];
  const log = await AuditLog.open({
    path,
    signer,
    clock,
    checkpointEvery,
    ...(anchor ? { anchor } : {}),
    onAnchor: async (a) => {
      anchors.push(a);
    },
  });
  for (let i = 0; i < n; i++) await log.log(ev(i));
  await log.close();
  return anchors;
}

async function fileLines(): Promise<string[]> {
  return (await readFile(path, "utf8")).trimEnd().split("\n");
}

const openWith = (anchor: AuditAnchor, acceptLoss = false) =>
  AuditLog.open({ path, signer, clock, checkpointEvery: 4, anchor, acceptLoss });

describe("audit anchor (the store's record of how far the log reached)", () => {
  it("is recorded for the genesis line and each checkpoint once durable, in order, the last being the close", async () => {
    const anchors = await writeLog(9);
    const lines = await fileLines();
    // genesis, 9 entries, interval checkpoints every 4 lines, close checkpoint
    expect(anchors.map((a) => a.seq)).toEqual([1, 5, 10, 13]);
    for (const a of anchors) {
      expect(a.head).toBe(lineHash(lines[a.seq - 1] as string));
      const obj = JSON.parse(lines[a.seq - 1] as string) as { type: string };
      expect(["genesis", "checkpoint"]).toContain(obj.type);
    }
    expect(anchors.at(-1)?.seq).toBe(lines.length);
  });

  it("a log that still holds the anchored line opens and continues; so does one a crash left longer", async () => {
    const anchors = await writeLog(5);
    const last = anchors.at(-1)!;
    // An older anchor (a crash between the sync and the record) is still reached.
    const more = await writeLog(3, anchors[1]);
    expect(more[0]?.seq).toBe(last.seq + 1); // the reopen checkpoint
    const r = await verifyAuditLog(path, { anchor: more.at(-1)! });
    expect(r.ok).toBe(true);
    expect(r.anchorSeq).toBe(more.at(-1)!.seq);
  });

  it("refuses a log cut short, emptied, deleted or replaced, naming what was lost; a refused open changes nothing", async () => {
    const anchors = await writeLog(10);
    const anchor = anchors.at(-1)!;
    const whole = await readFile(path);
    const lines = await fileLines();

    // Cut short: the last three lines removed (the file stays a valid log on its own).
    const cut = lines.slice(0, -3).join("\n") + "\n";
    await writeFile(path, cut);
    const e1 = (await openWith(anchor).catch((e: unknown) => e)) as { code: string; message: string };
    expect(e1.code).toBe("FR_AUDIT_TAMPERED");
    expect(e1.message).toContain(`ends at seq ${anchor.seq - 3}`);
    expect(e1.message).toContain(`at seq ${anchor.seq}`);
    expect(e1.message).toContain("--accept-audit-loss");
    expect(await readFile(path, "utf8")).toBe(cut);
    expect((await verifyAuditLog(path)).ok).toBe(true); // the file alone cannot show it
    const v1 = await verifyAuditLog(path, { anchor });
    expect(v1.problem).toMatchObject({ kind: "truncated", line: lines.length - 2, seq: anchor.seq - 2 });

    // Emptied, and deleted: refused, and no file is left behind for a deleted one.
    await truncate(path, 0);
    expect(((await openWith(anchor).catch((e: unknown) => e)) as Error).message).toContain("emptied");
    expect((await readFile(path)).length).toBe(0);
    expect((await verifyAuditLog(path, { anchor })).problem?.kind).toBe("truncated");
    await unlink(path);
    expect(((await openWith(anchor).catch((e: unknown) => e)) as Error).message).toContain("deleted");
    expect(existsSync(path)).toBe(false);

    // Replaced by a fresh log that is as long: the chain verifies, but the anchored line is another one.
    await writeLog(20);
    const e2 = (await openWith(anchor).catch((e: unknown) => e)) as { code: string; message: string };
    expect(e2.code).toBe("FR_AUDIT_TAMPERED");
    expect(e2.message).toContain("replaced");
    const v2 = await verifyAuditLog(path, { anchor });
    expect(v2.problem).toMatchObject({ kind: "replaced", seq: anchor.seq, line: anchor.seq });

    // Another audit key's record: the key and the log were both swapped.
    await writeFile(path, whole);
    const other = { ...anchor, keyId: "ab".repeat(32) };
    expect(((await openWith(other).catch((e: unknown) => e)) as Error).message).toContain("audit key");

    // The original, restored from a backup, opens again.
    const log = await openWith(anchor);
    await log.close();
  });

  it("a new file beside a rotated log that holds the anchored line is a rotation; one moved elsewhere is not", async () => {
    const anchor = (await writeLog(6)).at(-1)!;
    await rename(path, `${path}.1`);
    await writeFile(`${path}.lock`, ""); // the lock file beside it is never taken for a log
    const log = await openWith(anchor);
    expect(log.rotatedFrom).toBe(`${path}.1`);
    expect(log.lossAccepted).toBeUndefined();
    await log.close();

    // Moved out of the directory: not recognised, refused, and the message says where a rotated log is looked for.
    // (The rotated file stays beside it: a sibling that does not hold the anchor is not taken for it.)
    await unlink(path);
    const anchor2 = (await writeLog(2)).at(-1)!;
    await rename(path, join(dir, "elsewhere.log"));
    const e = (await openWith(anchor2).catch((err: unknown) => err)) as Error;
    expect(e.message).toContain("deleted");
    expect(e.message).toContain("audit.log.<suffix>");
    expect(existsSync(path)).toBe(false);
  });

  it("with acceptLoss opens the log as it is and says what was lost", async () => {
    const anchor = (await writeLog(6)).at(-1)!;
    await truncate(path, 0);
    const log = await openWith(anchor, true);
    expect(log.lossAccepted).toContain("emptied");
    await log.log(ev(1));
    await log.close();
    expect((await verifyAuditLog(path)).ok).toBe(true);
  });
});

describeEachStore("audit anchor storage", (ctx) => {
  it("reads back what was written last; none before the first write", async () => {
    const store = await ctx.open([auditMigrations]);
    expect(await readAuditAnchor(store)).toBeUndefined();
    const a = { keyId: "11".repeat(32), seq: 1, head: "22".repeat(32) };
    await writeAuditAnchor(store, a, 1000);
    expect(await readAuditAnchor(store)).toEqual(a);
    const b = { keyId: a.keyId, seq: 9_007_199_254_740_000, head: "33".repeat(32) };
    await writeAuditAnchor(store, b, 2000);
    const reopened = await ctx.open([auditMigrations]);
    expect(await readAuditAnchor(reopened)).toEqual(b);
  });
});
