/** JSON text helpers for the audit log's hot path; json.test.ts holds them to JSON.stringify. */

/** Printable ASCII without a quote or a backslash: JSON.stringify would write such a string between quotes as it is. */
const PLAIN_JSON_STRING = /^[ !#-[\]-~]*$/;

/** JSON.stringify(s), without calling it for the usual short printable-ASCII strings. */
export function jsonString(s: string): string {
  return s.length <= 256 && PLAIN_JSON_STRING.test(s) ? '"' + s + '"' : JSON.stringify(s);
}
