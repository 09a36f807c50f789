/**
 * Safe XML reading for policy documents: bounded size, no DTD (so no entity expansion and no external
 * entities, the XXE and "billion laughs" classes), every parser error fatal. Writing helpers escape text.
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
