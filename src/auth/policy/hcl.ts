import { fail } from "../../errors/index.js";

/**
 * A small, bounded parser for the subset of HCL (v1) and JSON that Vault ACL policies use.
 * Both syntaxes produce the same node tree, so a policy means the same thing whichever way it is
 * written. Block labels are folded into nested objects: `path "a/*" { … }` becomes the entry
 * `path = { "a/*" = { … } }`, which is exactly the JSON form `{"path": {"a/*": {…}}}`.
 */

export interface Pos {
  readonly line: number;
  readonly column: number;
}

export type Node =
  | { readonly kind: "string"; readonly value: string; readonly pos: Pos }
  | { readonly kind: "number"; readonly value: number; readonly pos: Pos }
  | { readonly kind: "bool"; readonly value: boolean; readonly pos: Pos }
  | { readonly kind: "list"; readonly items: readonly Node[]; readonly pos: Pos }
  | { readonly kind: "object"; readonly entries: readonly Entry[]; readonly pos: Pos };

export interface Entry {
  readonly key: string;
  readonly value: Node;
  readonly pos: Pos;
}

export const MAX_POLICY_BYTES = 128 * 1024;
export const MAX_DEPTH = 16;
const MAX_TOKENS = 200_000;

type TokKind = "ident" | "string" | "number" | "punct" | "eof";
interface Tok {
  readonly kind: TokKind;
  readonly text: string;
  readonly pos: Pos;
}

export function syntaxError(pos: Pos | undefined, what: string): never {
  fail("FR_POLICY_SYNTAX", pos ? `line ${pos.line}, column ${pos.column}: ${what}` : what);
}

/** Splits policy text into tokens, dropping whitespace and `#`, `//` and `/* *\/` comments. */
export function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const here = (): Pos => ({ line, column: i - lineStart + 1 });
  const newline = (at: number): void => {
    line++;
    lineStart = at + 1;
  };
  while (i < src.length) {
    if (toks.length > MAX_TOKENS) syntaxError(here(), "the policy has too many tokens");
    const c = src[i]!;
    if (c === "\n") {
      newline(i);
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\uFEFF") {
      i++;
    } else if (c === "#" || (c === "/" && src[i + 1] === "/")) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const start = here();
      const end = src.indexOf("*/", i + 2);
      if (end < 0) syntaxError(start, "the /* comment is never closed");
      for (let j = i; j < end; j++) if (src[j] === "\n") newline(j);
      i = end + 2;
    } else if (c === '"') {
      const pos = here();
      toks.push({ kind: "string", text: readString(), pos });
    } else if ("{}[],=:".includes(c)) {
      toks.push({ kind: "punct", text: c, pos: here() });
      i++;
    } else if (/[0-9-]/.test(c)) {
      const pos = here();
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i, i + 64));
      if (!m) syntaxError(pos, `unexpected character "${c}"`);
      toks.push({ kind: "number", text: m[0], pos });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const pos = here();
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(src.slice(i, i + 256))!;
      toks.push({ kind: "ident", text: m[0], pos });
      i += m[0].length;
    } else {
      syntaxError(here(), `unexpected character ${JSON.stringify(c)}`);
    }
  }
  toks.push({ kind: "eof", text: "", pos: here() });
  return toks;

  function readString(): string {
    const start = here();
    i++;
    let out = "";
    for (;;) {
      if (i >= src.length) syntaxError(start, "the string is never closed");
      const ch = src[i]!;
      if (ch === '"') {
        i++;
        return out;
      }
      if (ch === "\n") syntaxError(start, "the string is not closed before the end of the line");
      if (ch === "\\") {
        const e = src[i + 1];
        const map: Record<string, string> = {
          n: "\n",
          t: "\t",
          r: "\r",
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
        };
        if (e !== undefined && map[e] !== undefined) {
          out += map[e];
          i += 2;
        } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          syntaxError(here(), "invalid escape sequence in string");
        }
      } else {
        out += ch;
        i++;
      }
    }
  }
}

/** Parses HCL or JSON policy text into a node tree. JSON is recognized by a leading `{`. */
export function parseDocument(src: string): Node {
  if (Buffer.byteLength(src, "utf8") > MAX_POLICY_BYTES) {
    fail("FR_POLICY_SYNTAX", `the policy is larger than ${MAX_POLICY_BYTES} bytes`);
  }
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Tok => toks[p]!;
  const next = (): Tok => toks[p++]!;
  const describe = (t: Tok): string => (t.kind === "eof" ? "the end of the policy" : JSON.stringify(t.text));
  const isPunct = (t: Tok, s: string): boolean => t.kind === "punct" && t.text === s;

  const first = peek();
  let doc: Node;
  if (isPunct(first, "{")) {
    next();
    doc = parseBody("}", first.pos, 1);
  } else {
    doc = parseBody("eof", first.pos, 0);
  }
  if (peek().kind !== "eof")
    syntaxError(peek().pos, `unexpected ${describe(peek())} after the end of the policy`);
  return doc;

  /** Entries until `close` ("}" or end of input). Commas between entries are optional, as in HCL. */
  function parseBody(close: "}" | "eof", pos: Pos, depth: number): Node {
    if (depth > MAX_DEPTH) syntaxError(pos, `the policy nests deeper than ${MAX_DEPTH} levels`);
    const entries: Entry[] = [];
    for (;;) {
      const t = peek();
      if (close === "eof" ? t.kind === "eof" : isPunct(t, "}")) {
        if (close === "}") next();
        return { kind: "object", entries, pos };
      }
      if (t.kind === "eof") syntaxError(pos, "the { is never closed");
      entries.push(parseEntry(depth));
      if (isPunct(peek(), ",")) next();
    }
  }

  /** `key ["label"…] (= value | { body })` or `"key": value`. */
  function parseEntry(depth: number): Entry {
    const k = next();
    if (k.kind !== "ident" && k.kind !== "string") syntaxError(k.pos, `expected a key, found ${describe(k)}`);
    const labels: Tok[] = [];
    while (peek().kind === "string") labels.push(next());
    let value: Node;
    const t = peek();
    if (isPunct(t, "=") || isPunct(t, ":")) {
      if (labels.length) syntaxError(t.pos, `unexpected ${describe(t)} after the block label`);
      next();
      value = parseValue(depth + 1);
    } else if (isPunct(t, "{")) {
      next();
      value = parseBody("}", t.pos, depth + 1);
    } else {
      syntaxError(t.pos, `expected "=" or "{" after ${JSON.stringify(k.text)}, found ${describe(t)}`);
    }
    // Fold labels inside out: path "a" { … } → path = { "a" = { … } }.
    for (let j = labels.length - 1; j >= 0; j--) {
      const l = labels[j]!;
      value = { kind: "object", entries: [{ key: l.text, value, pos: l.pos }], pos: l.pos };
    }
    return { key: k.text, value, pos: k.pos };
  }

  function parseValue(depth: number): Node {
    if (depth > MAX_DEPTH) syntaxError(peek().pos, `the policy nests deeper than ${MAX_DEPTH} levels`);
    const t = next();
    if (t.kind === "string") return { kind: "string", value: t.text, pos: t.pos };
    if (t.kind === "number") return { kind: "number", value: Number(t.text), pos: t.pos };
    if (t.kind === "ident" && (t.text === "true" || t.text === "false")) {
      return { kind: "bool", value: t.text === "true", pos: t.pos };
    }
    if (isPunct(t, "{")) return parseBody("}", t.pos, depth);
    if (isPunct(t, "[")) {
      const items: Node[] = [];
      for (;;) {
        if (isPunct(peek(), "]")) {
          next();
          return { kind: "list", items, pos: t.pos };
        }
        if (peek().kind === "eof") syntaxError(t.pos, "the [ is never closed");
        items.push(parseValue(depth + 1));
        if (isPunct(peek(), ",")) next();
        else if (!isPunct(peek(), "]"))
          syntaxError(peek().pos, `expected "," or "]", found ${describe(peek())}`);
      }
    }
    syntaxError(t.pos, `expected a value, found ${describe(t)}`);
  }
}
