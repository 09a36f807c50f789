import { fail } from "../errors/index.js";

const MAX_PATH_CHARS = 512;
const MAX_SEGMENTS = 64;

/**
 * Checks a secret's path inside a mount ("app/db"). Refused: `..` or `.` segments, empty segments
 * ("a//b"), control characters and overlong paths — such keys could alias others or escape a policy glob.
 * `allowTrailingSlash` is for LIST, whose path names a folder.
 */
export function checkSecretPath(
  path: string,
  opts: { allowEmpty?: boolean; allowTrailingSlash?: boolean } = {},
): string {
  let p = path;
  if (opts.allowTrailingSlash && p.endsWith("/")) p = p.slice(0, -1);
  if (p === "") {
    if (opts.allowEmpty) return "";
    fail("FR_VALIDATION", "missing secret path: name the secret after the mount, e.g. secret/data/app/db");
  }
  if (p.length > MAX_PATH_CHARS)
    fail("FR_VALIDATION", `the secret path is longer than ${MAX_PATH_CHARS} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) fail("FR_VALIDATION", "the secret path contains control characters");
  const segments = p.split("/");
  if (segments.length > MAX_SEGMENTS)
    fail("FR_VALIDATION", `the secret path has more than ${MAX_SEGMENTS} segments`);
  for (const s of segments) {
    if (s === "")
      fail("FR_VALIDATION", `the secret path "${clip(path)}" has an empty segment (// or a leading /)`);
    if (s === "." || s === "..")
      fail(
        "FR_VALIDATION",
        `the secret path "${clip(path)}" contains a "${s}" segment, which is not allowed`,
      );
  }
  return p;
}

/** A mount path in canonical form: no leading slash, exactly one trailing slash, checked like a secret path. */
export function normalizeMountPath(path: string): string {
  const trimmed = path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (trimmed === "") fail("FR_VALIDATION", "missing mount path, e.g. sys/mounts/app-secrets");
  if (!/^[A-Za-z0-9_.\-/]+$/.test(trimmed))
    fail("FR_VALIDATION", `mount path "${clip(path)}" may use only letters, digits, _ . - and /`);
  checkSecretPath(trimmed);
  return trimmed + "/";
}

export const clip = (s: string, n = 80): string => (s.length > n ? s.slice(0, n) + "…" : s);
