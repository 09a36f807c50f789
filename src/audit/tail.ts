import { open, stat, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fail } from "../errors/index.js";
import { endOfLastLine, linesBackward, readAt } from "./file-lines.js";
import type { TailOptions } from "./types.js";

const NL = 0x0a;
const READ_CHUNK = 1024 * 1024;

/**
 * Prints the last `lines` complete lines of an audit log, then (with `follow`) each line appended later,
 * until `signal` aborts. Follows by polling, which works on every filesystem (fs.watch does not), and by
 * name, as `tail -F` does: a file that is replaced (rotation) is drained to its end and the new one is read
 * from its start; a file truncated or rewritten in place (copytruncate) is read again from its start; a
 * missing file is waited for.
 */
export async function tailAuditLog(path: string, opts: TailOptions): Promise<void> {
  const want = Math.max(0, Math.floor(opts.lines ?? 10));
  const fh = await openForTail(path);
  let cur: Cursor | undefined;
  try {
    const st = await fh.stat();
    const pos = await endOfLastLine(fh, st.size);
    const last: string[] = [];
    if (want > 0) {
      for await (const line of linesBackward(fh, pos)) {
        last.push(line.toString("utf8"));
        if (last.length >= want) break;
      }
    }
    for (let i = last.length - 1; i >= 0; i--) opts.onLine(last[i] as string);
    if (!opts.follow) return;
    cur = {
      fh,
      dev: st.dev,
      ino: st.ino,
      pos,
      anchor: await readAt(fh, Math.max(0, pos - ANCHOR), Math.min(ANCHOR, pos)),
    };
    await follow(path, cur, opts);
  } finally {
    await (cur?.fh ?? fh).close().catch(() => undefined);
  }
}

/** The file being followed: `pos` sits just past the last line emitted, `anchor` holds the bytes before it. */
interface Cursor {
  fh: FileHandle;
  dev: number;
  ino: number;
  pos: number;
  anchor: Buffer;
}

/** Bytes before the read position compared on every poll, to tell an in-place rewrite from an append. */
const ANCHOR = 256;

async function follow(path: string, cur: Cursor, opts: TailOptions): Promise<void> {
  const interval = opts.intervalMs ?? 200;
  const notice = opts.onNotice ?? (() => undefined);
  let gone: string | undefined; // why the path cannot be followed now, reported once
  while (!opts.signal?.aborted) {
    try {
      await sleep(interval, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      return; // aborted
    }
    // The open file first: after a rename the server keeps appending to it until it reopens the log.
    await drain(cur, opts.onLine, () => notice(`${path}: file truncated; reading it again from its start`));
    let now;
    try {
      now = await stat(path);
    } catch (e) {
      const why = `${path} is inaccessible (${(e as NodeJS.ErrnoException).code ?? errText(e)}); waiting for it to reappear`;
      if (gone !== why) notice(why);
      gone = why;
      continue;
    }
    if (now.ino === cur.ino && now.dev === cur.dev) {
      gone = undefined;
      continue;
    }
    let next: FileHandle;
    try {
      next = await openForTail(path);
    } catch (e) {
      const why = `${errText(e)}; waiting for it to become readable`;
      if (gone !== why) notice(why);
      gone = why;
      continue;
    }
    // Replaced: lines written to the old file since the last read come first, then the new file from its start.
    await drain(cur, opts.onLine, () => undefined);
    await cur.fh.close().catch(() => undefined);
    const st = await next.stat();
    Object.assign(cur, { fh: next, dev: st.dev, ino: st.ino, pos: 0, anchor: Buffer.alloc(0) });
    notice(`${path} ${gone ? "has appeared" : "has been replaced"}; following the new file from its start`);
    gone = undefined;
    await drain(cur, opts.onLine, () => undefined);
  }
}

/**
 * Emits every complete line from `cur.pos` to the file's end and moves past them; an unfinished last line
 * is read again on the next call. When the file shrank below `pos`, or the bytes before `pos` changed (it
 * was truncated and written again between two polls), reading restarts at 0.
 */
async function drain(cur: Cursor, onLine: (line: string) => void, truncated: () => void): Promise<void> {
  const size = (await cur.fh.stat()).size;
  if (size < cur.pos || !(await anchorHolds(cur))) {
    truncated();
    cur.pos = 0;
    cur.anchor = Buffer.alloc(0);
  }
  let at = cur.pos;
  let carry: Buffer = Buffer.alloc(0);
  while (at < size) {
    const chunk = await readAt(cur.fh, at, Math.min(READ_CHUNK, size - at));
    if (chunk.length === 0) break;
    at += chunk.length;
    const data: Buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, start)) {
      onLine(data.subarray(start, i).toString("utf8"));
      start = i + 1;
    }
    if (start > 0) {
      cur.pos = at - (data.length - start);
      cur.anchor = Buffer.from(data.subarray(Math.max(0, start - ANCHOR), start));
    }
    carry = Buffer.from(data.subarray(start));
  }
}

async function anchorHolds(cur: Cursor): Promise<boolean> {
  const n = cur.anchor.length;
  return n === 0 || (await readAt(cur.fh, cur.pos - n, n)).equals(cur.anchor);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function openForTail(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    fail("FR_AUDIT_FILE", `cannot read audit log ${path} (${(e as Error).message})`, { cause: e });
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    fail("FR_AUDIT_FILE", `cannot read audit log ${path}: it is not a regular file (a directory?)`);
  }
  return fh;
}
