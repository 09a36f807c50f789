/**
 * sros2 policy documents (policy.xsd version 0.2.0): read a file, resolve its XIncludes the way libxml2
 * does for sros2 (`xpointer(/profile/*)` splices the included profile's children in place), then check the
 * result against the schema's structure and what a keystore can hold: enclave names as `checkEnclaveName`
 * (they become directories and certificate CNs), name lengths, XML 1.0 characters (xml.ts). Bounded: file
 * size, nesting, include depth and count, element count.
 *
 * This is the one check for every way a policy comes in: files for the CLI (`loadPolicyFile`) and text
 * for the server's `ros2/policies` (`parsePolicy` with `xinclude: false`).
 */
import fs from "node:fs";
import path from "node:path";
import type { Document, Element } from "@xmldom/xmldom";
import { fail } from "../errors/index.js";
import { checkEnclaveName } from "./layout.js";
import { childElements, parseXml, textOf } from "./xml.js";

export type Qualifier = "ALLOW" | "DENY";
export type RuleAttribute = "publish" | "subscribe" | "request" | "reply" | "call" | "execute";

/** One `<topics>`, `<services>` or `<actions>` element of a profile. */
export interface PolicyRuleSet {
  readonly kind: "topics" | "services" | "actions";
  readonly qualifiers: Readonly<Partial<Record<RuleAttribute, Qualifier>>>;
  readonly names: readonly string[];
}

export interface PolicyProfile {
  readonly ns: string;
  readonly node: string;
  readonly rules: readonly PolicyRuleSet[];
}

export interface PolicyEnclave {
  readonly path: string;
  /** One entry per `<profiles>` element; sros2 makes one grant of each. */
  readonly profileGroups: readonly (readonly PolicyProfile[])[];
}

export interface Policy {
  readonly enclaves: readonly PolicyEnclave[];
}

export interface ParsePolicyOptions {
  /** Where relative XInclude hrefs are resolved (default: the current directory). */
  readonly baseDir?: string;
  /** How the policy is named in errors (default "the policy"). */
  readonly name?: string;
  /**
   * false: an XInclude element is refused instead of resolved — for text from a client, where an include
   * would read the receiver's files (the server's `ros2/policies`).
   */
  readonly xinclude?: boolean;
}

const XINCLUDE_NS = ["http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"];
const XML_NS = "http://www.w3.org/XML/1998/namespace";
const MAX_INCLUDE_DEPTH = 16;
const MAX_INCLUDES = 256;
const MAX_ELEMENTS = 100_000;
const MAX_NAME_LENGTH = 1024;
/** Element nesting: a policy needs 7 levels (plus what `<metadata>` holds); also bounds the recursion. */
const MAX_NESTING = 64;

interface IncludeState {
  includes: number;
  readonly xinclude: boolean;
  /** The policy as errors name it. */
  readonly name: string;
}

const ruleKinds = {
  topics: { child: "topic", attrs: ["publish", "subscribe"] },
  services: { child: "service", attrs: ["reply", "request"] },
  actions: { child: "action", attrs: ["call", "execute"] },
} as const satisfies Record<PolicyRuleSet["kind"], { child: string; attrs: readonly RuleAttribute[] }>;

/** Reads a policy file, resolving XIncludes relative to each including file. */
export function loadPolicyFile(file: string): Policy {
  const doc = readDocument(path.resolve(file), file);
  resolveIncludes(doc.documentElement as Element, path.resolve(file), 0, 1, {
    includes: 0,
    xinclude: true,
    name: file,
  });
  return policyFromElement(doc.documentElement as Element, file);
}

/** Parses policy text (XIncludes resolved against `baseDir`, or refused with `xinclude: false`). */
export function parsePolicy(text: string, opts: ParsePolicyOptions = {}): Policy {
  const name = opts.name ?? "the policy";
  const doc = parseXml(text, name);
  const base = path.join(path.resolve(opts.baseDir ?? "."), "policy.xml");
  resolveIncludes(doc.documentElement as Element, base, 0, 1, {
    includes: 0,
    xinclude: opts.xinclude ?? true,
    name,
  });
  return policyFromElement(doc.documentElement as Element, name);
}

function readDocument(abs: string, shown: string): Document {
  let text: string;
  try {
    const st = fs.statSync(abs);
    if (!st.isFile()) fail("FR_ROS2_POLICY_INVALID", `${shown} is not a file`);
    if (st.size > 1024 * 1024) fail("FR_ROS2_POLICY_INVALID", `${shown} is larger than 1 MiB`);
    text = fs.readFileSync(abs, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      fail("FR_ROS2_POLICY_INVALID", `policy file ${shown} does not exist`);
    }
    throw e;
  }
  return parseXml(text, shown);
}

/**
 * XInclude 1.0 for what sros2 policies use: `href` to a local file, optional `xpointer(/root/*)` (the
 * root element's children) — without xpointer the included document's root element itself. `depth` counts
 * nested includes, `level` the element nesting of the result (included elements take the include's place).
 */
function resolveIncludes(el: Element, file: string, depth: number, level: number, state: IncludeState): void {
  if (level > MAX_NESTING) {
    fail(
      "FR_ROS2_POLICY_INVALID",
      `${state.name}: elements nested deeper than ${MAX_NESTING} levels${depth > 0 ? ` (in ${file})` : ""}`,
    );
  }
  for (const child of childElements(el)) {
    const ns = child.namespaceURI ?? "";
    // Any XInclude namespace, also one libxml2 would not resolve: refused outright, never guessed at.
    if (!state.xinclude && /XInclude$/i.test(ns)) {
      fail(
        "FR_ROS2_POLICY_INVALID",
        `${state.name}: XInclude is not accepted here (it would read this machine's files); send the expanded policy`,
      );
    }
    if (child.localName === "include" && XINCLUDE_NS.includes(ns)) {
      if (++state.includes > MAX_INCLUDES) {
        fail("FR_ROS2_POLICY_INVALID", `${file}: more than ${MAX_INCLUDES} xi:include elements`);
      }
      if (depth >= MAX_INCLUDE_DEPTH) {
        fail(
          "FR_ROS2_POLICY_INVALID",
          `${file}: xi:include nested deeper than ${MAX_INCLUDE_DEPTH} (a loop?)`,
        );
      }
      const replacement = included(child, file, depth, level + 1, state);
      const doc = el.ownerDocument as Document;
      for (const r of replacement) el.insertBefore(doc.importNode(r, true), child);
      el.removeChild(child);
    } else {
      resolveIncludes(child, file, depth, level + 1, state);
    }
  }
}

/** `level`: the include element's nesting level, which what it includes takes. */
function included(inc: Element, file: string, depth: number, level: number, state: IncludeState): Element[] {
  const href = inc.getAttribute("href") ?? "";
  const parse = inc.getAttribute("parse");
  if (parse && parse !== "xml")
    fail("FR_ROS2_POLICY_INVALID", `${file}: xi:include parse="${parse}" is not supported`);
  if (!href) fail("FR_ROS2_POLICY_INVALID", `${file}: xi:include without href`);
  // Only local files: a URL scheme (http:, file:, …) would let a policy reach the network or anywhere.
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.includes("\0")) {
    fail(
      "FR_ROS2_POLICY_INVALID",
      `${file}: xi:include href "${href}" must be a relative or absolute file path`,
    );
  }
  const target = path.resolve(path.dirname(file), href);
  const doc = readDocument(target, href);
  const root = doc.documentElement as Element;
  // Without xpointer the root takes the include's place (`level`), with it the root's children do.
  resolveIncludes(root, target, depth + 1, inc.getAttribute("xpointer") ? level - 1 : level, state);
  const xp = inc.getAttribute("xpointer");
  if (!xp) return [root];
  const m = /^xpointer\(\/([A-Za-z_][\w.-]*)\/\*\)$/.exec(xp.trim());
  if (!m)
    fail(
      "FR_ROS2_POLICY_INVALID",
      `${file}: xi:include xpointer "${xp}" is not supported; use xpointer(/profile/*)`,
    );
  if (root.localName !== m[1]) {
    fail(
      "FR_ROS2_POLICY_INVALID",
      `${file}: xpointer ${xp} selects nothing in ${href} (root is <${root.localName}>)`,
    );
  }
  return childElements(root);
}

/**
 * An element as written, with its namespace when it has one: `<policy>` alone cannot tell the
 * `<policy>` policy.xsd wants from `<policy xmlns="urn:x">` (policy.xsd has no target namespace).
 */
function shownElement(el: Element): string {
  const name = `<${el.nodeName.slice(0, 100)}>`;
  return el.namespaceURI ? `${name} in namespace "${el.namespaceURI.slice(0, 200)}"` : name;
}

/** The schema check (policy.xsd) and conversion to the model, in one walk. */
function policyFromElement(root: Element, where: string): Policy {
  const count = { elements: 0 };
  const at = (el: Element, what: string): never =>
    fail("FR_ROS2_POLICY_INVALID", `${where}: ${what} (in <${el.localName}>)`);
  const tick = (el: Element) => {
    if (++count.elements > MAX_ELEMENTS) at(el, `more than ${MAX_ELEMENTS} elements`);
  };
  const onlyAttrs = (el: Element, allowed: readonly string[]) => {
    for (let i = 0; i < el.attributes.length; i++) {
      const a = el.attributes.item(i);
      if (!a) continue;
      if (a.name === "xmlns" || a.prefix === "xmlns") continue;
      if (a.namespaceURI === XML_NS && a.localName === "base") continue;
      if (a.namespaceURI || !allowed.includes(a.name)) at(el, `unknown attribute "${a.name}"`);
    }
  };
  const expectName = (el: Element, name: string) => {
    tick(el);
    if (el.namespaceURI || el.localName !== name) {
      at(el, `unexpected element ${shownElement(el)}; expected <${name}>`);
    }
  };

  if (root.namespaceURI || root.localName !== "policy") {
    fail(
      "FR_ROS2_POLICY_INVALID",
      `${where}: the root element must be <policy> with no namespace (policy.xsd has none), not ${shownElement(root)}` +
        (!root.namespaceURI
          ? ""
          : root.prefix
            ? `; remove the ${root.prefix}: prefix and its xmlns:${root.prefix} declaration`
            : `; remove its xmlns attribute`),
    );
  }
  onlyAttrs(root, ["version"]);
  const version = root.getAttribute("version");
  if (version !== "0.2.0") at(root, `version must be "0.2.0" (got ${version ? `"${version}"` : "none"})`);
  const top = childElements(root);
  if (top.length !== 1 || !top[0]) at(root, "exactly one <enclaves> element is required");
  const enclavesEl = top[0] as Element;
  expectName(enclavesEl, "enclaves");
  onlyAttrs(enclavesEl, []);
  const enclaveEls = childElements(enclavesEl);
  if (enclaveEls.length === 0) at(enclavesEl, "at least one <enclave> is required");

  const enclaves: PolicyEnclave[] = enclaveEls.map((enc) => {
    expectName(enc, "enclave");
    onlyAttrs(enc, ["path"]);
    const encPath = enc.getAttribute("path");
    if (encPath === null) at(enc, `the path attribute is required`);
    // The path becomes the enclave's directory and certificate CN: the same check as every enclave name.
    checkEnclaveName(encPath as string, where);
    const groups = childElements(enc);
    if (groups.length === 0) at(enc, "at least one <profiles> is required");
    const profileGroups = groups.map((g) => {
      expectName(g, "profiles");
      onlyAttrs(g, ["type"]);
      const profiles: PolicyProfile[] = [];
      let metadataSeen = false;
      for (const p of childElements(g)) {
        if (p.localName === "metadata" && !p.namespaceURI) {
          if (metadataSeen) at(p, "only one <metadata> is allowed");
          metadataSeen = true;
          continue;
        }
        if (metadataSeen) at(p, "<metadata> must come after every <profile>");
        expectName(p, "profile");
        profiles.push(profileOf(p));
      }
      if (profiles.length === 0) at(g, "at least one <profile> is required");
      return profiles;
    });
    return { path: encPath as string, profileGroups };
  });
  return { enclaves };

  function profileOf(p: Element): PolicyProfile {
    onlyAttrs(p, ["ns", "node"]);
    const ns = p.getAttribute("ns");
    const node = p.getAttribute("node");
    if (ns === null || node === null) at(p, "the ns and node attributes are required");
    // Both become part of every relative name's topic (permissions.ts `fullyQualified`).
    for (const [attr, v] of [
      ["ns", ns],
      ["node", node],
    ] as const) {
      if ((v as string).length > MAX_NAME_LENGTH)
        at(p, `${attr} is longer than ${MAX_NAME_LENGTH} characters`);
    }
    const rules = childElements(p).map((r): PolicyRuleSet => {
      tick(r);
      const kind = r.localName as PolicyRuleSet["kind"];
      // Own keys only: `<constructor>` or `<toString>` must not find Object.prototype's members.
      const spec = r.namespaceURI || !Object.hasOwn(ruleKinds, kind) ? undefined : ruleKinds[kind];
      if (!spec) {
        at(r, `unexpected element ${shownElement(r)}; expected <topics>, <services> or <actions>`);
      }
      const s = spec as (typeof ruleKinds)[PolicyRuleSet["kind"]];
      onlyAttrs(r, s.attrs);
      const qualifiers: Partial<Record<RuleAttribute, Qualifier>> = {};
      for (const a of s.attrs) {
        const v = r.getAttribute(a);
        if (v === null || v === "") continue;
        if (v !== "ALLOW" && v !== "DENY") at(r, `${a}="${v}" must be ALLOW or DENY`);
        qualifiers[a] = v as Qualifier;
      }
      const items = childElements(r);
      if (items.length === 0) at(r, `at least one <${s.child}> is required`);
      const names = items.map((it) => {
        expectName(it, s.child);
        onlyAttrs(it, []);
        const name = textOf(it, where);
        if (!name) at(it, `an empty <${s.child}>`);
        if (name.length > MAX_NAME_LENGTH) at(it, `a name longer than ${MAX_NAME_LENGTH} characters`);
        return name;
      });
      return { kind, qualifiers, names };
    });
    return { ns: ns as string, node: node as string, rules };
  }
}
