import path from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../errors/index.js";

/** A `file:` key: a software key in one file. */
export interface FileKeyUri {
  readonly scheme: "file";
  /** Absolute path; a relative URI path is resolved against the working directory. */
  readonly path: string;
}

export type Pkcs11ObjectType = "public" | "private" | "cert" | "secret-key" | "data";

/** A `pkcs11:` key (RFC 7512). Every field is already percent-decoded. */
export interface Pkcs11KeyUri {
  readonly scheme: "pkcs11";
  readonly token?: string;
  readonly serial?: string;
  readonly slotId?: bigint;
  readonly object?: string;
  readonly id?: Uint8Array;
  readonly type?: Pkcs11ObjectType;
  readonly pinValue?: string;
  /** A file path whose contents are the PIN (from `pin-source`, a path or a `file:` URI). */
  readonly pinSource?: string;
  readonly modulePath?: string;
}

export type ParsedKeyUri = FileKeyUri | Pkcs11KeyUri;

/** A pkcs11: URI must say which token holds the key (RFC 7512 token, serial or slot-id). */
export function checkTokenNamed(sel: {
  readonly token?: string;
  readonly serial?: string;
  readonly slotId?: bigint;
}): void {
  if (sel.token === undefined && sel.serial === undefined && sel.slotId === undefined) {
    fail("FR_KEY_URI", "the pkcs11 URI names no token; add token=LABEL (or serial= / slot-id=)");
  }
}
export type KeyUriScheme = ParsedKeyUri["scheme"];

const objectTypes: readonly Pkcs11ObjectType[] = ["public", "private", "cert", "secret-key", "data"];

/** RFC 7512 section 2.3 attributes we accept but do not need to pick a key. */
const ignoredPathAttrs = new Set([
  "library-description",
  "library-manufacturer",
  "library-version",
  "manufacturer",
  "model",
  "slot-description",
  "slot-manufacturer",
]);

/**
 * Parses a key URI into its backend and attributes. Errors name what is wrong but never repeat a PIN.
 */
export function parseKeyUri(uri: string): ParsedKeyUri {
  const colon = uri.indexOf(":");
  if (colon <= 0) fail("FR_KEY_URI", `"${redactKeyUri(uri)}" has no scheme; use file:PATH or pkcs11:…`);
  const scheme = uri.slice(0, colon).toLowerCase();
  const rest = uri.slice(colon + 1);
  if (scheme === "file") return parseFileUri(uri, rest);
  if (scheme === "pkcs11") return parsePkcs11Uri(rest);
  return fail("FR_KEY_URI", `unknown key URI scheme "${scheme}:"; supported schemes are file: and pkcs11:`);
}

function parseFileUri(uri: string, rest: string): FileKeyUri {
  let p: string;
  if (rest.startsWith("//")) {
    // file:///abs/path (a file URL with an empty host)
    try {
      p = fileURLToPath(uri);
    } catch (e) {
      return fail("FR_KEY_URI", `"${uri}" is not a valid file URL (${(e as Error).message})`);
    }
  } else {
    p = rest;
  }
  if (p.length === 0) fail("FR_KEY_URI", `"${uri}" names no file; use file:/abs/key.pem or file:rel/key.pem`);
  if (p.includes("\0")) fail("FR_KEY_URI", "the file: key path contains a NUL byte");
  return { scheme: "file", path: path.resolve(p) };
}

function parsePkcs11Uri(rest: string): Pkcs11KeyUri {
  const q = rest.indexOf("?");
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? "" : rest.slice(q + 1);
  const out: {
    -readonly [K in keyof Pkcs11KeyUri]: Pkcs11KeyUri[K];
  } = { scheme: "pkcs11" };
  const seen = new Set<string>();

  for (const [name, raw] of attributes(pathPart, ";", "path")) {
    if (seen.has(name)) fail("FR_KEY_URI", `pkcs11 URI attribute "${name}" appears twice`);
    seen.add(name);
    switch (name) {
      case "token":
        out.token = decodeText(name, raw);
        break;
      case "serial":
        out.serial = decodeText(name, raw);
        break;
      case "object":
        out.object = decodeText(name, raw);
        break;
      case "id":
        out.id = decodeBytes(name, raw);
        break;
      case "slot-id": {
        const v = decodeText(name, raw);
        if (!/^\d{1,20}$/.test(v)) fail("FR_KEY_URI", `pkcs11 URI slot-id "${v}" is not a decimal number`);
        out.slotId = BigInt(v);
        break;
      }
      case "type": {
        const v = decodeText(name, raw);
        if (!objectTypes.includes(v as Pkcs11ObjectType)) {
          fail("FR_KEY_URI", `pkcs11 URI type "${v}" is not one of ${objectTypes.join(", ")}`);
        }
        out.type = v as Pkcs11ObjectType;
        break;
      }
      default:
        if (!ignoredPathAttrs.has(name) && !name.startsWith("x-")) {
          fail("FR_KEY_URI", `unknown pkcs11 URI path attribute "${name}"`);
        }
    }
  }

  for (const [name, raw] of attributes(queryPart, "&", "query")) {
    if (seen.has(name)) fail("FR_KEY_URI", `pkcs11 URI attribute "${name}" appears twice`);
    seen.add(name);
    switch (name) {
      case "pin-value":
        out.pinValue = decodeSecret(raw);
        break;
      case "pin-source":
        out.pinSource = pinSourcePath(decodeText(name, raw));
        break;
      case "module-path":
        out.modulePath = decodeText(name, raw);
        break;
      default:
        if (!name.startsWith("x-")) fail("FR_KEY_URI", `unknown pkcs11 URI query attribute "${name}"`);
    }
  }
  if (out.pinValue !== undefined && out.pinSource !== undefined) {
    fail("FR_KEY_URI", "a pkcs11 URI takes pin-value or pin-source, not both");
  }
  return out;
}

function* attributes(part: string, sep: string, where: string): Generator<[string, string]> {
  if (part.length === 0) return;
  for (const attr of part.split(sep)) {
    if (attr.length === 0) continue; // tolerate a trailing separator
    const eq = attr.indexOf("=");
    const name = eq < 0 ? attr : attr.slice(0, eq);
    if (eq <= 0 || !/^[a-z][a-z0-9-]*$/.test(name)) {
      // Show the name only: a misspelt pin-value ("PIN-VALUE=…", "pin_value=…") still carries the PIN.
      const shown = eq < 0 && where === "query" ? "" : ` "${name}"`;
      fail("FR_KEY_URI", `malformed pkcs11 URI ${where} attribute${shown}; expected name=value`);
    }
    yield [name, attr.slice(eq + 1)];
  }
}

function decodeBytes(name: string, raw: string): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        fail("FR_KEY_URI", `pkcs11 URI attribute "${name}" has a bad percent-escape at offset ${i}`);
      }
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(raw[i] ?? "", "utf8")) bytes.push(b);
    }
  }
  return Uint8Array.from(bytes);
}

function decodeText(name: string, raw: string): string {
  const bytes = decodeBytes(name, raw);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("FR_KEY_URI", `pkcs11 URI attribute "${name}" is not valid UTF-8 after percent-decoding`);
  }
}

/** Like decodeText, but the error never shows the value or its position. */
function decodeSecret(raw: string): string {
  try {
    return decodeText("pin-value", raw);
  } catch {
    return fail("FR_KEY_URI", "pkcs11 URI pin-value has a bad percent-escape or is not UTF-8");
  }
}

function pinSourcePath(v: string): string {
  if (v.startsWith("file:")) {
    const parsed = parseFileUri(v, v.slice(5));
    return parsed.path;
  }
  if (v.includes(":") && !path.isAbsolute(v)) {
    fail("FR_KEY_URI", `pkcs11 URI pin-source "${v}" must be a file path or a file: URI`);
  }
  return path.resolve(v);
}

/** The URI with any pin-value removed, safe to log and to show in errors. */
export function redactKeyUri(uri: string): string {
  return uri
    .replace(/([?&])pin-value=[^&]*(&?)/gi, (_m, lead: string, tail: string) => (tail ? lead : ""))
    .replace(/[?&]$/, "");
}
