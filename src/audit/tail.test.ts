import { appendFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, open, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
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

/** Starts following `path` as `fleetroot audit tail -f` does; stop() aborts and waits for it to end. */
function follower(lines = 10) {
  const got: string[] = [];
  const notices: string[] = [];
  const ac = new AbortController();
  const done = tailAuditLog(path, {
    lines,
    follow: true,
    signal: ac.signal,
    intervalMs: 25,
    onLine: (l) => got.push(l),
    onNotice: (m) => notices.push(m),
  });
  return {
    got,
    notices,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("tailAuditLog follows by name across rotation, as tail -F", () => {
  it("a server log moved aside and restarted: every line of both files once, in order", async () => {
    const open1 = { path, signer: testSigner(), clock: new ManualClock(), checkpointEvery: 1000 };
    const log = await AuditLog.open(open1);
    for (let i = 0; i < 3; i++) await log.log({ type: "event", event: { name: `old${i}` } });
    const f = follower(100);
    await until(() => f.got.length === 4);
    // The operator's rotation: mv, then restart. Until it closes, the server writes to the moved file.
    renameSync(path, `${path}.1`);
    await log.log({ type: "event", event: { name: "old-after-mv" } });
    await sleepMs(100); // several polls with no file at the path
    await log.close();
    const log2 = await AuditLog.open({ ...open1, path });
    await log2.log({ type: "event", event: { name: "new0" } });
    const want = [
      ...(await readFile(`${path}.1`, "utf8")).trimEnd().split("\n"),
      ...(await readFile(path, "utf8")).trimEnd().split("\n"),
    ];
    await until(() => f.got.length >= want.length);
    await sleepMs(100);
    expect(f.got).toEqual(want);
    expect(f.notices.join("\n")).toMatch(/inaccessible \(ENOENT\).*\n.*has appeared; following the new file/);
    await f.stop();
    await log2.close();
  });

  it("lines appended just before the rename are not lost, and the new file is read from its start", async () => {
    await writeFile(path, "a1\na2\n");
    const f = follower();
    await until(() => f.got.length === 2);
    // Within one poll: a last append to the old file, the rename, a new file that already has lines.
    appendFileSync(path, "a3\n");
    renameSync(path, `${path}.1`);
    writeFileSync(path, "b1\nb2\n");
    await until(() => f.got.length >= 5);
    await appendFile(path, "b3\n");
    await until(() => f.got.length >= 6);
    await sleepMs(80);
    expect(f.got).toEqual(["a1", "a2", "a3", "b1", "b2", "b3"]);
    expect(f.notices).toEqual([`${path} has been replaced; following the new file from its start`]);
    await f.stop();
  });

  it("copytruncate: a file truncated, or truncated and refilled past the old size between polls, is read again from its start", async () => {
    await writeFile(path, "x1\nx2\n");
    const f = follower();
    await until(() => f.got.length === 2);
    truncateSync(path, 0);
    appendFileSync(path, "y1-longer-than-before\n");
    await until(() => f.got.length >= 3);
    truncateSync(path, 0);
    await until(() => f.notices.length >= 2);
    await appendFile(path, "z1\n");
    await until(() => f.got.length >= 4);
    await sleepMs(80);
    expect(f.got).toEqual(["x1", "x2", "y1-longer-than-before", "z1"]);
    expect(f.notices[0]).toBe(`${path}: file truncated; reading it again from its start`);
    await f.stop();
  });

  it("waits while the path is missing or is not a file, instead of failing", async () => {
    await writeFile(path, "a1\n");
    const f = follower();
    await until(() => f.got.length === 1);
    await rename(path, `${path}.1`);
    await mkdir(path);
    await sleepMs(100);
    await rmdir(path);
    await writeFile(path, "b1\n");
    await until(() => f.got.length >= 2);
    expect(f.got).toEqual(["a1", "b1"]);
    expect(f.notices.some((m) => m.includes("not a regular file"))).toBe(true);
    await f.stop();
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
