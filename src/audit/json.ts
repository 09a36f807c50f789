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

/**
 * `s` as one flat string. A string built by concatenation is a tree of its pieces, which V8 walks and
 * copies piece by piece every time a line containing it is written out (~4-5 ns a piece); a string kept
 * in a cache and put into many lines is worth flattening once. JSON.parse(JSON.stringify(s)) gives back
 * exactly `s` for every string, lone surrogates included, and builds it in one piece.
 */
export function flatString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
