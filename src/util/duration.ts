import { fail } from "../errors/index.js";

const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a Vault-style duration ("90", "30s", "15m", "1h30m", "7d") or a number of seconds into seconds.
 * Empty input parses to 0.
 */
export function parseDuration(input: string | number | undefined | null, field = "duration"): number {
  if (input === undefined || input === null || input === "") return 0;
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) fail("FR_VALIDATION", `${field} must be a non-negative number`);
    return Math.floor(input);
  }
  const s = input.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (units[m[2]!] ?? 0);
    pos = re.lastIndex;
  }
  if (pos !== s.length || pos === 0)
    fail("FR_VALIDATION", `${field} "${input}" is not a duration like 30s, 15m, 1h or 7d`);
  return Math.floor(total);
}

/** Formats seconds as a compact duration string ("1h30m0s"), as Vault prints TTLs. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h ? `${h}h${m}m${s}s` : m ? `${m}m${s}s` : `${s}s`;
}
