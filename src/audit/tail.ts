import { open, stat, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fail } from "../errors/index.js";
import { endOfLastLine, linesBackward, readAt } from "./file-lines.js";
import type { TailOptions } from "./types.js";

const NL = 0x0a;
const READ_CHUNK = 1024 * 1024;

/**
 * Prints the last `lines` complete lines of an audit log, then (with `follow`) each line appended later,
 * until `signal` aborts. Follows by polling the size, which works on every filesystem (fs.watch does not);
 * a file that shrinks or is replaced (rotation) is read again from its start.
 */
export async function tailAuditLog(path: string, opts: TailOptions): Promise<void> {
  const want = Math.max(0, Math.floor(opts.lines ?? 10));
  let fh = await openForTail(path);
  try {
    let size = (await fh.stat()).size;
    let pos = await endOfLastLine(fh, size);
    const last: string[] = [];
    if (want > 0) {
      for await (const line of linesBackward(fh, pos)) {
        last.push(line.toString("utf8"));
        if (last.length >= want) break;
      }
    }
    for (let i = last.length - 1; i >= 0; i--) opts.onLine(last[i] as string);
    if (!opts.follow) return;

    let ino = (await fh.stat()).ino;
    let carry: Buffer = Buffer.alloc(0);
    const interval = opts.intervalMs ?? 200;
    while (!opts.signal?.aborted) {
      try {
        await sleep(interval, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        return; // aborted
      }
      const now = await stat(path).catch(() => undefined);
      if (!now) continue; // between a rotation's rename and the new file's creation
      if (now.ino !== ino || now.size < pos) {
        await fh.close();
        fh = await openForTail(path);
        ino = (await fh.stat()).ino;
        pos = 0;
        carry = Buffer.alloc(0);
      }
      size = (await fh.stat()).size;
      while (pos < size) {
        const chunk = await readAt(fh, pos, Math.min(READ_CHUNK, size - pos));
        if (chunk.length === 0) break;
        pos += chunk.length;
        const data: Buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
        let start = 0;
        for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, start)) {
          opts.onLine(data.subarray(start, i).toString("utf8"));
          start = i + 1;
        }
        carry = Buffer.from(data.subarray(start));
      }
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
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
