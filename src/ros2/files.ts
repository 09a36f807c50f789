/** Filesystem helpers for keystores: atomic writes and directories built aside, then renamed into place. */
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

import { tempSibling } from "../util/atomic-write.js";
import { mkdirp, mkdirpSync } from "../util/index.js";

/** Writes several files so that either all new versions are in place or none were written over. */
export async function writeFilesAtomic(
  files: readonly { path: string; content: string | Uint8Array; mode?: number }[],
): Promise<void> {
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const f of files) {
      const tmp = tempSibling(f.path);
      await fs.writeFile(tmp, f.content, { mode: f.mode ?? 0o644, flag: "wx" });
      staged.push({ tmp, target: f.path });
    }
  } catch (e) {
    await Promise.all(staged.map((s) => fs.rm(s.tmp, { force: true })));
    throw e;
  }
  // Renames cannot fail for a reason the writes above would not have shown (same directory, same device).
  for (const s of staged) await fs.rename(s.tmp, s.target);
}

/**
 * Builds a directory at a temporary sibling of `target` with `fill`, then renames it into place; on any
 * failure the temporary directory is removed and `target` is untouched. `target` must not exist (an empty
 * directory is replaced).
 */
export async function buildDirAtomic(target: string, fill: (dir: string) => Promise<void>): Promise<void> {
  await mkdirp(path.dirname(target));
  const tmp = tempSibling(target);
  await fs.mkdir(tmp, { mode: 0o755 });
  try {
    await fill(tmp);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** `exists` without a thread-pool round trip (for checks repeated per enclave in a batch). */
export function existsSync(p: string): boolean {
  return fsSync.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/**
 * `buildDirAtomic` for a set of small files already in memory, with synchronous calls: each takes
 * microseconds, where an async call waits for a thread-pool round trip (about 1 ms on a busy machine) —
 * which dominated creating enclaves in bulk. `target` must not exist.
 */
export function writeDirAtomicSync(
  target: string,
  entries: readonly {
    readonly name: string;
    readonly content: string | Uint8Array;
    readonly mode?: number;
  }[],
): void {
  mkdirpSync(path.dirname(target));
  const tmp = tempSibling(target);
  fsSync.mkdirSync(tmp, { mode: 0o755 });
  try {
    for (const e of entries)
      fsSync.writeFileSync(path.join(tmp, e.name), e.content, { mode: e.mode ?? 0o644, flag: "wx" });
    fsSync.renameSync(tmp, target);
  } catch (e) {
    fsSync.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
