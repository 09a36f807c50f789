import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";

/*
 * Why not `mkdir(dir, { recursive: true })`: Node 20's recursive mkdir retries a component forever when
 * mkdir says ENOENT although the parent exists, which is what /proc answers ("/proc/self/nope/x" spins at
 * 100% CPU). These helpers walk up to the first existing ancestor once, then create each missing component
 * with a plain mkdir, so every failure surfaces as Node's own errno error (code, syscall, path).
 */

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/** ENOENT and ENOTDIR from stat mean "not there (yet)": keep walking up; mkdir reports the real cause. */
function absent(e: unknown): boolean {
  const code = errnoCode(e);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** The components of `target` that do not exist, outermost first (empty when `target` exists). */
function missingSync(target: string): string[] {
  const missing: string[] = [];
  for (let d = target; ; d = path.dirname(d)) {
    try {
      fs.statSync(d);
      return missing; // any other stat error: stop here and let mkdir below say what is wrong
    } catch (e) {
      if (!absent(e)) return missing;
    }
    missing.unshift(d);
    if (path.dirname(d) === d) return missing;
  }
}

async function missingAsync(target: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = target; ; d = path.dirname(d)) {
    try {
      await fsp.stat(d);
      return missing;
    } catch (e) {
      if (!absent(e)) return missing;
    }
    missing.unshift(d);
    if (path.dirname(d) === d) return missing;
  }
}

function isDirSync(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function isDir(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * Creates `dir` and its missing parents (each with `mode`, minus the umask). Returns the first directory
 * it created (absolute), or undefined when `dir` already was a directory — like Node's recursive mkdir.
 * Throws Node's errno errors: EEXIST when `dir` is an existing non-directory, ENOTDIR when a parent is
 * one, ENOENT/EACCES/EROFS… from the mkdir that failed. Another process creating a component at the same
 * time is fine.
 */
export function mkdirpSync(dir: string, mode?: number): string | undefined {
  const target = path.resolve(dir);
  const missing = missingSync(target);
  if (missing.length === 0) {
    if (isDirSync(target)) return undefined;
    missing.push(target); // not a directory: let mkdir throw Node's EEXIST
  }
  let first: string | undefined;
  for (const d of missing) {
    try {
      fs.mkdirSync(d, mode);
      first ??= d;
    } catch (e) {
      if (errnoCode(e) !== "EEXIST" || !isDirSync(d)) throw e;
    }
  }
  return first;
}

/** The asynchronous {@link mkdirpSync}. */
export async function mkdirp(dir: string, mode?: number): Promise<string | undefined> {
  const target = path.resolve(dir);
  const missing = await missingAsync(target);
  if (missing.length === 0) {
    if (await isDir(target)) return undefined;
    missing.push(target);
  }
  let first: string | undefined;
  for (const d of missing) {
    try {
      await fsp.mkdir(d, mode);
      first ??= d;
    } catch (e) {
      if (errnoCode(e) !== "EEXIST" || !(await isDir(d))) throw e;
    }
  }
  return first;
}
