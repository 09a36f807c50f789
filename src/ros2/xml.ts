/**
 * Safe XML reading for policy documents: bounded size, no DTD (so no entity expansion and no external
 * entities, the XXE and "billion laughs" classes), only characters XML 1.0 allows, every parser error
 * fatal. Writing helpers escape text.
 */
import { DOMParser } from "@xmldom/xmldom";
import type { Document, Element } from "@xmldom/xmldom";
import { fail } from "../errors/index.js";

/** Upper bound for one XML file we read (policies and the files they include). */
export const MAX_XML_BYTES = 1024 * 1024;

/** Parses `text` as XML or fails with FR_ROS2_POLICY_INVALID naming `where`. */
export function parseXml(text: string, where: string): Document {
  if (Buffer.byteLength(text, "utf8") > MAX_XML_BYTES) {
    fail("FR_ROS2_POLICY_INVALID", `${where} is larger than ${MAX_XML_BYTES} bytes`);
  }
  // A DTD is the only way to declare entities; policies never need one, so refuse it outright rather than
  // trust a parser's entity handling (XXE, entity expansion).
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    fail(
      "FR_ROS2_XML_UNSAFE",
      `${where} contains a DTD or entity declaration (<!DOCTYPE/<!ENTITY); remove it — policies need none`,
    );
  }
  checkXmlChars(text, where);
  const problems: string[] = [];
  const parser = new DOMParser({
    onError: (level, message) => {
      problems.push(`${level}: ${message}`);
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(text, "text/xml");
  } catch (e) {
    return fail(
      "FR_ROS2_POLICY_INVALID",
      `${where} is not well-formed XML: ${firstLine((e as Error).message)}`,
    );
  }
  if (problems.length > 0) {
    fail("FR_ROS2_POLICY_INVALID", `${where} is not well-formed XML: ${firstLine(problems[0] ?? "")}`);
  }
  if (!doc.documentElement) fail("FR_ROS2_POLICY_INVALID", `${where} has no root element`);
  return doc;
}

/**
 * XML 1.0 section 2.2 `Char`: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
 * With the `u` flag a lone surrogate (possible in a JSON string) is not in any range, so it is refused too.
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const CHAR_REF = /&#(?:x([0-9A-Fa-f]+)|([0-9]+));/y;

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/**
 * Refuses characters XML 1.0 does not allow, written directly or as a character reference (`&#1;`): the
 * parser lets both through, and they would end up in permissions.xml, which the DDS plugins cannot read.
 */
function checkXmlChars(text: string, where: string): void {
  const bad = (index: number, what: string): never => {
    const before = text.slice(0, index).split("\n");
    const column = (before[before.length - 1] ?? "").length + 1;
    return fail(
      "FR_ROS2_POLICY_INVALID",
      `${where} contains ${what} at line ${before.length}, column ${column}; XML 1.0 does not allow that character, remove it`,
    );
  };
  const raw = NOT_XML_CHAR.exec(text);
  if (raw) bad(raw.index, codePoint(raw[0].codePointAt(0) ?? 0));
  // One pass, skipping CDATA sections, comments and processing instructions (where `&#…;` is literal text).
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith("<", i)) {
      const close = text.startsWith("<![CDATA[", i)
        ? text.indexOf("]]>", i)
        : text.startsWith("<!--", i)
          ? text.indexOf("-->", i)
          : text.startsWith("<?", i)
            ? text.indexOf("?>", i)
            : i;
      if (close < 0) return; // unterminated: the parser reports it
      i = close;
    } else if (text.startsWith("&#", i)) {
      CHAR_REF.lastIndex = i;
      const m = CHAR_REF.exec(text);
      if (!m) continue; // not a reference: the parser reports it
      const digits = (m[1] ?? m[2] ?? "").replace(/^0+(?=.)/, "");
      // More than 8 digits is beyond U+10FFFF in either base (and would lose precision when parsed).
      const cp = digits.length > 8 ? -1 : parseInt(digits, m[1] === undefined ? 10 : 16);
      if (!isXmlChar(cp)) bad(i, `the character reference ${m[0].slice(0, 24)}`);
      i += m[0].length - 1;
    }
  }
}

const codePoint = (cp: number) => `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;

function firstLine(s: string): string {
  return (s.split("\n")[0] ?? "").slice(0, 200);
}

/** Child elements of `el`, in document order. */
export function childElements(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1) out.push(n as Element);
  }
  return out;
}

/** The element's text content, trimmed; fails if it has child elements. */
export function textOf(el: Element, where: string): string {
  let s = "";
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1) fail("FR_ROS2_POLICY_INVALID", `${where}: <${el.localName}> must hold text only`);
    if (n.nodeType === 3 || n.nodeType === 4) s += n.nodeValue ?? "";
  }
  return s.trim();
}

const escapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/** Escapes text or an attribute value for XML output. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => escapes[c] ?? c);
}
