import { appendFile, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../util/clock.js";
import { linesBackward, endOfLastLine } from "./file-lines.js";
import { AuditLog } from "./log.js";
import { tailAuditLog } from "./tail.js";
import { testSigner } from "./test-signer.js";

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-tail-"));
  path = join(dir, "audit.log");
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** Resolves once `pred` holds, polling; fails the test after `ms`. */
async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("tailAuditLog", () => {
  it("prints the last N lines, then follows new entries until aborted", async () => {
    const log = await AuditLog.open({
      path,
      signer: testSigner(),
      clock: new ManualClock(),
      checkpointEvery: 1000,
    });
    for (let i = 0; i < 30; i++) await log.log({ type: "event", event: { name: `e${i}` } });
    const fileLines = (await readFile(path, "utf8")).trimEnd().split("\n");

    const printed: string[] = [];
    await tailAuditLog(path, { lines: 5, onLine: (l) => printed.push(l) });
    expect(printed).toEqual(fileLines.slice(-5));

    const followed: string[] = [];
    const ac = new AbortController();
    const done = tailAuditLog(path, {
      lines: 2,
      follow: true,
      signal: ac.signal,
      intervalMs: 20,
      onLine: (l) => followed.push(l),
    });
    await until(() => followed.length === 2);
    await log.log({ type: "event", event: { name: "appended-later" } });
    await until(() => followed.length === 3);
    expect(followed.slice(0, 2)).toEqual(fileLines.slice(-2));
    expect(JSON.parse(followed[2] as string)).toMatchObject({ seq: 32, event: { name: "appended-later" } });
    ac.abort();
    await done;
    await log.close();
  });

  it("emits a line appended in two writes once, whole", async () => {
    await writeFile(path, "one\n");
    const got: string[] = [];
    const ac = new AbortController();
    const done = tailAuditLog(path, {
      lines: 10,
      follow: true,
      signal: ac.signal,
      intervalMs: 10,
      onLine: (l) => got.push(l),
    });
    await until(() => got.length === 1);
    await appendFile(path, '{"half":');
    await new Promise((r) => setTimeout(r, 60));
    expect(got).toEqual(["one"]);
    await appendFile(path, "1}\n");
    await until(() => got.length === 2);
    expect(got).toEqual(["one", '{"half":1}']);
    ac.abort();
    await done;
  });

  it("fails with FR_AUDIT_FILE when there is no log", async () => {
    await expect(tailAuditLog(join(dir, "none.log"), { onLine: () => undefined })).rejects.toMatchObject({
      code: "FR_AUDIT_FILE",
    });
  });
});

describe("linesBackward", () => {
  it("reads lines longer than its chunk size, last first", async () => {
    const ls = ["a".repeat(70_000), "", "b", "c".repeat(140_000), "d"];
    await writeFile(path, ls.join("\n") + "\npartial");
    const fh = await open(path, "r");
    try {
      const end = await endOfLastLine(fh, (await fh.stat()).size);
      const got: string[] = [];
      for await (const l of linesBackward(fh, end)) got.push(l.toString());
      expect(got).toEqual([...ls].reverse());
    } finally {
      await fh.close();
    }
  });
});
