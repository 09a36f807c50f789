import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dirs: string[] = [];
let hooked = false;

/**
 * A new directory under the system's temporary directory, removed with everything in it when this process
 * exits (normally, through process.exit, or on SIGTERM/SIGINT where the script exits on them). Bench
 * servers write their audit log and database here: an auth run alone appends some hundreds of MB of
 * audit lines, which would otherwise pile up run after run.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}
