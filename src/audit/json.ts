/** JSON text helpers for the audit log's hot path; json.test.ts holds them to JSON.stringify. */

/** Printable ASCII without a quote or a backslash: JSON.stringify would write such a string between quotes as it is. */
const PLAIN_JSON_STRING = /^[ !#-[\]-~]*$/;

/** Whether JSON.stringify(s) is s between quotes, for the usual short printable-ASCII strings (false: maybe not). */
export function isPlainJsonString(s: string): boolean {
  return s.length <= 256 && PLAIN_JSON_STRING.test(s);
}

/** JSON.stringify(s), without calling it for the usual short printable-ASCII strings. */
export function jsonString(s: string): string {
  return isPlainJsonString(s) ? '"' + s + '"' : JSON.stringify(s);
}
