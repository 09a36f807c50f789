import crypto from "node:crypto";
import type { SuccinctRoles } from "./metadata.js";

/**
 * TUF delegation path patterns: shell-style globs matched segment by segment (a pattern has as many
 * `/`-separated parts as the paths it covers; `*` and `?` never cross a `/`), as tuf-js and python-tuf do.
 */
export function pathMatches(pattern: string, target: string): boolean {
  const p = pattern.split("/");
  const t = target.split("/");
  if (p.length !== t.length) return false;
  return p.every((part, i) => globToRegExp(part).test(t[i] ?? ""));
}

const cache = new Map<string, RegExp>();

function globToRegExp(glob: string): RegExp {
  const hit = cache.get(glob);
  if (hit) return hit;
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        re += `[${body.startsWith("!") ? "^" + body.slice(1) : body}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  const out = new RegExp(`^${re}$`, "s");
  if (cache.size < 1000) cache.set(glob, out);
  return out;
}

/** TAP 15: the bin a target path belongs to — the leftmost bit_length bits of sha256(path). */
export function binFor(succinct: Pick<SuccinctRoles, "bit_length" | "name_prefix">, target: string): string {
  const n =
    crypto.createHash("sha256").update(target).digest().readUInt32BE(0) >>> (32 - succinct.bit_length);
  return binName(succinct, n);
}

export function binName(succinct: Pick<SuccinctRoles, "bit_length" | "name_prefix">, index: number): string {
  const width = (2 ** succinct.bit_length - 1).toString(16).length;
  return `${succinct.name_prefix}-${index.toString(16).padStart(width, "0")}`;
}

/** Target paths: relative, `/`-separated, no empty, `.` or `..` segments, bounded length. */
export function checkTargetPath(path: string): string | undefined {
  if (path.length === 0 || path.length > 1024) return "a target path is 1 to 1024 characters";
  if (path.startsWith("/") || path.split("/").some((s) => s === "" || s === "." || s === ".."))
    return "a target path is relative with no empty, '.' or '..' segments";
  if ([...path].some((c) => c.charCodeAt(0) < 0x20 || c === "\\")) {
    return "a target path has no control characters or backslashes";
  }
  return undefined;
}

/** Role names start with a letter, so `<version>.<role>.json` file names parse one way only. */
export const roleNamePattern = /^[A-Za-z][A-Za-z0-9._-]{0,127}$/;
