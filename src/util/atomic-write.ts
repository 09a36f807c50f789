import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { mkdirp } from "./mkdirp.js";

/** A sibling temporary path for `target` (same directory, so a rename into place is atomic). */
export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
}

/**
 * Creates `file` (it must not exist) with `data` and fsyncs it before closing. When the write or the sync
 * fails (a full disk, say) the file is removed again: nothing half-written stays behind.
 */
export async function writeNewSynced(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await fs.open(file, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.rm(file, { force: true });
    throw e;
  }
  await fh.close();
}

/** Makes the directory's entries durable (a file created or renamed in it). */
export async function syncDirectory(dir: string): Promise<void> {
  const d = await fs.open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Replaces `file` with `data` so a reader sees the old or the new content, never a mix: write a temporary
 * file in the same directory (created if missing), fsync it, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  await mkdirp(dir);
  const tmp = tempSibling(file);
  await writeNewSynced(tmp, data, mode);
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDirectory(dir);
}
