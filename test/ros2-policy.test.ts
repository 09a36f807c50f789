import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { DOMParser, type Element } from "@xmldom/xmldom";
import { afterAll, describe, expect, it } from "vitest";
import { FleetError } from "../src/errors/index.js";
import {
  fullyQualified,
  governanceXml,
  grantsFromPolicy,
  loadPolicyFile,
  parsePolicy,
  permissionsXml,
} from "../src/ros2/index.js";

const run = promisify(execFile);
const vectors = path.join(import.meta.dirname, "vectors/ros2/sros2");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleetroot-ros2-policy-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const validity = { notBefore: new Date("2020-05-01T00:00:00Z"), notAfter: new Date("2030-05-01T00:00:00Z") };

/** A permissions document reduced to what must match: grants, subjects, rules and ordered topic lists. */
function summarize(xml: string) {
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const kids = (el: Element, name?: string) =>
    Array.from({ length: el.childNodes.length }, (_, i) => el.childNodes.item(i)).filter(
      (n): n is Element => n?.nodeType === 1 && (!name || (n as Element).localName === name),
    );
  const text = (el: Element | undefined) => el?.textContent?.trim() ?? "";
  const perms = kids(doc.documentElement as Element, "permissions")[0] as Element;
  return kids(perms, "grant").map((g) => ({
    name: g.getAttribute("name"),
    subject: text(kids(g, "subject_name")[0]),
    default: text(kids(g, "default")[0]),
    rules: kids(g)
      .filter((r) => r.localName === "allow_rule" || r.localName === "deny_rule")
      .map((r) => ({
        kind: r.localName,
        domains: kids(kids(r, "domains")[0] as Element).map((d) => text(d)),
        publish: kids(r, "publish").map((p) => kids(kids(p, "topics")[0] as Element).map((t) => text(t))),
        subscribe: kids(r, "subscribe").map((p) => kids(kids(p, "topics")[0] as Element).map((t) => text(t))),
      })),
  }));
}

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    expect((e as FleetError).code).toBe(code);
    if (message) expect((e as FleetError).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe("policy → permissions against the sros2 vectors", () => {
  for (const name of ["talker_listener", "add_two_ints", "minimal_action"]) {
    it(`${name}: same grants, subjects, rules and topic lists as sros2`, () => {
      const policy = loadPolicyFile(path.join(vectors, "policies", `${name}.policy.xml`));
      const grants = grantsFromPolicy(policy, { ...validity, rosDiscoveryInfo: false });
      const ours = summarize(permissionsXml(grants));
      const reference = summarize(
        fs.readFileSync(path.join(vectors, "permissions", name, "permissions.xml"), "utf8"),
      );
      expect(ours).toEqual(reference);
      expect(ours.length).toBe(2);
    });

    it(`${name}: adds the ros_discovery_info allow rule by default`, () => {
      const policy = loadPolicyFile(path.join(vectors, "policies", `${name}.policy.xml`));
      const ours = summarize(permissionsXml(grantsFromPolicy(policy, validity)));
      for (const g of ours) {
        expect(g.rules.at(-1)).toEqual({
          kind: "allow_rule",
          domains: ["0"],
          publish: [["ros_discovery_info"]],
          subscribe: [["ros_discovery_info"]],
        });
      }
    });
  }

  it("writes validity and domain ids from the options", () => {
    const policy = loadPolicyFile(path.join(vectors, "policies", "talker_listener.policy.xml"));
    const xml = permissionsXml(grantsFromPolicy(policy, { ...validity, domains: [7, { min: 10, max: 12 }] }));
    expect(xml).toContain("<not_before>2020-05-01T00:00:00</not_before>");
    expect(xml).toContain("<id>7</id>");
    expect(xml).toMatch(/<id_range>\s*<min>10<\/min>\s*<max>12<\/max>\s*<\/id_range>/);
  });

  it("resolves ~, relative and absolute names as sros2", () => {
    expect(fullyQualified("~/get_state", "/ns", "node")).toBe("/ns/node/get_state");
    expect(fullyQualified("~/get_state", "/", "node")).toBe("/node/get_state");
    expect(fullyQualified("chatter", "/robot1", "talker")).toBe("/robot1/chatter");
    expect(fullyQualified("chatter", "/robot1/", "talker")).toBe("/robot1/chatter");
    expect(fullyQualified("/clock", "/robot1", "talker")).toBe("/clock");
  });

  it("maps DENY to a deny_rule before the allow_rule, and nested XIncludes (lifecycle_node.xml)", () => {
    const text = `<?xml version="1.0"?>
<policy version="0.2.0" xmlns:xi="http://www.w3.org/2001/XInclude">
  <enclaves><enclave path="/lc/node"><profiles>
    <profile ns="/lc" node="node">
      <xi:include href="common/lifecycle_node.xml" xpointer="xpointer(/profile/*)"/>
      <topics publish="DENY" subscribe="ALLOW"><topic>secret</topic></topics>
      <services request="DENY"><service>/reset</service></services>
      <actions call="DENY"><action>dock</action></actions>
    </profile>
  </profiles></enclave></enclaves>
</policy>`;
    const policy = parsePolicy(text, { baseDir: path.join(vectors, "policies") });
    const [g] = summarize(permissionsXml(grantsFromPolicy(policy, { ...validity, rosDiscoveryInfo: false })));
    expect(g?.rules.map((r) => r.kind)).toEqual(["deny_rule", "allow_rule"]);
    const deny = g?.rules[0];
    expect(deny?.publish).toEqual([
      [
        "rq/lc/dock/_action/cancel_goalRequest",
        "rq/lc/dock/_action/get_resultRequest",
        "rq/lc/dock/_action/send_goalRequest",
        "rq/resetRequest",
        "rt/lc/secret",
      ],
    ]);
    expect(deny?.subscribe).toEqual([
      [
        "rr/lc/dock/_action/cancel_goalReply",
        "rr/lc/dock/_action/get_resultReply",
        "rr/lc/dock/_action/send_goalReply",
        "rt/lc/dock/_action/feedback",
        "rt/lc/dock/_action/status",
        "rr/resetReply",
      ],
    ]);
    const allowPub = g?.rules[1]?.publish[0] ?? [];
    expect(allowPub).toContain("rr/lc/node/change_stateReply");
    expect(allowPub).toContain("rt/lc/node/transition_event");
    expect(allowPub).toContain("rt/lc/rosout"); // relative: under the profile namespace
    expect(g?.rules[1]?.subscribe[0]).toContain("rt/lc/secret");
  });
});

describe("bad policies are refused with clear errors", () => {
  const wrap = (profileBody: string, attrs = 'version="0.2.0"') =>
    `<policy ${attrs}><enclaves><enclave path="/a/b"><profiles><profile ns="/" node="b">${profileBody}</profile></profiles></enclave></enclaves></policy>`;

  it("not well-formed", () => {
    expectCode(() => parsePolicy("<policy><enclaves></policy>"), "FR_ROS2_POLICY_INVALID", /well-formed/);
  });
  it("external entities (XXE) and entity expansion", () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE policy [<!ENTITY x SYSTEM "file:///etc/passwd">]>${wrap('<topics publish="ALLOW"><topic>&x;</topic></topics>')}`;
    expectCode(() => parsePolicy(xxe), "FR_ROS2_XML_UNSAFE", /DTD/);
    const laughs = `<!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>${wrap('<topics publish="ALLOW"><topic>&b;</topic></topics>')}`;
    expectCode(() => parsePolicy(laughs), "FR_ROS2_XML_UNSAFE");
  });
  it("unknown elements and attributes, bad qualifiers, wrong version", () => {
    expectCode(
      () => parsePolicy(wrap('<params allow="ALLOW"><p>x</p></params>')),
      "FR_ROS2_POLICY_INVALID",
      /params/,
    );
    expectCode(
      () => parsePolicy(wrap('<topics publish="MAYBE"><topic>x</topic></topics>')),
      "FR_ROS2_POLICY_INVALID",
      /ALLOW or DENY/,
    );
    expectCode(
      () => parsePolicy(wrap('<topics reply="ALLOW"><topic>x</topic></topics>')),
      "FR_ROS2_POLICY_INVALID",
      /reply/,
    );
    expectCode(
      () => parsePolicy(wrap('<topics publish="ALLOW"><service>x</service></topics>')),
      "FR_ROS2_POLICY_INVALID",
      /service/,
    );
    expectCode(() => parsePolicy(wrap("", 'version="0.1.0"')), "FR_ROS2_POLICY_INVALID", /0\.2\.0/);
    expectCode(() => parsePolicy("<dds/>"), "FR_ROS2_POLICY_INVALID", /<policy>/);
  });
  it("rule elements named like Object.prototype members are unknown elements, not a TypeError", () => {
    for (const el of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expectCode(
        () => parsePolicy(wrap(`<${el} publish="ALLOW"><topic>x</topic></${el}>`)),
        "FR_ROS2_POLICY_INVALID",
        new RegExp(`unexpected element <${el}>`),
      );
      expectCode(
        () => parsePolicy(wrap(`<${el}><topic>x</topic></${el}>`)),
        "FR_ROS2_POLICY_INVALID",
        /expected <topics>, <services> or <actions>/,
      );
    }
  });
  it("includes: URLs, missing files and loops", () => {
    const inc = (href: string) =>
      wrap(
        `<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="${href}" xpointer="xpointer(/profile/*)"/>`,
      );
    expectCode(() => parsePolicy(inc("http://example.com/x.xml")), "FR_ROS2_POLICY_INVALID", /file path/);
    expectCode(
      () => parsePolicy(inc("nope.xml"), { baseDir: tmp }),
      "FR_ROS2_POLICY_INVALID",
      /does not exist/,
    );
    fs.writeFileSync(
      path.join(tmp, "loop.xml"),
      '<profile xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="loop.xml" xpointer="xpointer(/profile/*)"/></profile>',
    );
    expectCode(
      () => parsePolicy(inc("loop.xml"), { baseDir: tmp }),
      "FR_ROS2_POLICY_INVALID",
      /deeper|more than/,
    );
  });
});

/** A one-enclave policy; `enclave`, `topic`, `ns` and `node` are inserted as written (XML text). */
const onePolicy = (o: { enclave?: string; topic?: string; ns?: string; node?: string; root?: string } = {}) =>
  `<${o.root ?? "policy"} version="0.2.0"><enclaves><enclave path="${o.enclave ?? "/a/b"}"><profiles>` +
  `<profile ns="${o.ns ?? "/"}" node="${o.node ?? "b"}"><topics publish="ALLOW"><topic>${o.topic ?? "chatter"}</topic>` +
  `</topics></profile></profiles></enclave></enclaves></${(o.root ?? "policy").split(" ")[0]}>`;

/** The policy refused by both entry points (text and file) with `code`; returns the message. */
function refusedBoth(xml: string, code: string, message?: RegExp): string {
  expectCode(() => parsePolicy(xml), code, message);
  const file = path.join(tmp, "refused.policy.xml");
  fs.writeFileSync(file, xml);
  let msg = "";
  expectCode(
    () => {
      try {
        loadPolicyFile(file);
      } catch (e) {
        msg = (e as Error).message;
        throw e;
      }
    },
    code,
    message,
  );
  return msg;
}

describe("server-accepted bad policies: the one policy check refuses them (bug: ros2/policies stored what generate refuses)", () => {
  it("enclave paths are checked as enclave names: ../../x, 5,000 characters, a space", () => {
    refusedBoth(
      onePolicy({ enclave: "../../x" }),
      "FR_ROS2_ENCLAVE_NAME",
      /"\.\.\/\.\.\/x" is not a fully qualified/,
    );
    const long = refusedBoth(
      onePolicy({ enclave: `/${"a".repeat(4999)}` }),
      "FR_ROS2_ENCLAVE_NAME",
      /is 5000 characters, longer than 64/,
    );
    // The message names the file and shows the start of the name, not all 5,000 characters.
    expect(long).toMatch(/refused\.policy\.xml: /);
    expect(long.length).toBeLessThan(400);
    refusedBoth(onePolicy({ enclave: "/a b" }), "FR_ROS2_ENCLAVE_NAME", /"\/a b"/);
  });

  it("characters XML 1.0 does not allow, raw or as references, anywhere in the document; xmllint agrees", async () => {
    const cases: [Parameters<typeof onePolicy>[0], RegExp][] = [
      [{ topic: "chat\u0001ter" }, /U\+0001 at line 1, column \d+/],
      [{ topic: "chat&#1;ter" }, /character reference &#1; at line 1/],
      [{ topic: "chat&#x000000001;ter" }, /character reference &#x000000001;/],
      [{ topic: "chat&#xFFFE;ter" }, /&#xFFFE;/],
      [{ topic: "chat&#xD800;ter" }, /&#xD800;/],
      [{ ns: "/\u001b" }, /U\+001B/],
      [{ node: "b&#0;" }, /&#0;/],
    ];
    for (const [parts, message] of cases) {
      const xml = onePolicy(parts);
      refusedBoth(xml, "FR_ROS2_POLICY_INVALID", message);
      const file = path.join(tmp, "xmllint-bad.xml");
      fs.writeFileSync(file, xml);
      await expect(run("xmllint", ["--noout", "--nonet", file]), xml).rejects.toThrow();
    }
    // A lone surrogate cannot be written to a UTF-8 file, but it can arrive in a JSON string.
    expectCode(() => parsePolicy(onePolicy({ topic: "chat\ud800ter" })), "FR_ROS2_POLICY_INVALID", /U\+D800/);
    // In CDATA `&#1;` is four literal characters, and characters beyond the BMP are allowed.
    const fine = onePolicy({ topic: "<![CDATA[a&#1;]]>&#x1F600;&#00065;" });
    expect(parsePolicy(fine).enclaves[0]?.profileGroups[0]?.[0]?.rules[0]?.names).toEqual([
      "a&#1;\u{1F600}A",
    ]);
    fs.writeFileSync(path.join(tmp, "xmllint-good.xml"), fine);
    await run("xmllint", ["--noout", "--nonet", path.join(tmp, "xmllint-good.xml")]);
  });

  it("names, namespaces and node names longer than 1024 characters", () => {
    refusedBoth(onePolicy({ topic: "t".repeat(1025) }), "FR_ROS2_POLICY_INVALID", /longer than 1024/);
    refusedBoth(
      onePolicy({ ns: `/${"n".repeat(1024)}` }),
      "FR_ROS2_POLICY_INVALID",
      /ns is longer than 1024/,
    );
    refusedBoth(onePolicy({ node: "n".repeat(1025) }), "FR_ROS2_POLICY_INVALID", /node is longer than 1024/);
    expect(parsePolicy(onePolicy({ topic: "t".repeat(1024) })).enclaves).toHaveLength(1);
  });

  it("deep nesting is refused, not a stack overflow (was: generate failed with 'Maximum call stack size exceeded')", () => {
    const n = 30_000;
    const deep = onePolicy().replace(
      "</profile>",
      `</profile><metadata>${"<m>".repeat(n)}${"</m>".repeat(n)}</metadata>`,
    );
    refusedBoth(deep, "FR_ROS2_POLICY_INVALID", /nested deeper than 64 levels/);
    // What sros2 policies hold (metadata a few levels deep) is far from the bound.
    const shallow = onePolicy().replace(
      "</profile>",
      `</profile><metadata>${"<m>".repeat(20)}${"</m>".repeat(20)}</metadata>`,
    );
    expect(parsePolicy(shallow).enclaves).toHaveLength(1);
  });

  it("xinclude: false refuses XInclude elements instead of reading files", () => {
    const inc = onePolicy().replace(
      "<topics",
      '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/><topics',
    );
    expectCode(
      () => parsePolicy(inc, { name: "policy p", xinclude: false }),
      "FR_ROS2_POLICY_INVALID",
      /policy p: XInclude is not accepted here/,
    );
  });
});

describe("a namespaced root element is named with its namespace (bug: 'must be <policy>, not <policy>')", () => {
  it("a default namespace, a prefix, a namespaced child", () => {
    expectCode(
      () => parsePolicy(onePolicy({ root: 'policy xmlns="urn:x"' })),
      "FR_ROS2_POLICY_INVALID",
      /must be <policy> with no namespace .*not <policy> in namespace "urn:x"; remove its xmlns attribute/,
    );
    const prefixed = onePolicy()
      .replace(/^<policy /, '<p:policy xmlns:p="urn:x" ')
      .replace(/<\/policy>$/, "</p:policy>");
    expectCode(
      () => parsePolicy(prefixed),
      "FR_ROS2_POLICY_INVALID",
      /not <p:policy> in namespace "urn:x"; remove the p: prefix and its xmlns:p declaration/,
    );
    expectCode(
      () => parsePolicy(onePolicy().replace("<enclaves>", '<enclaves xmlns="urn:y">')),
      "FR_ROS2_POLICY_INVALID",
      /unexpected element <enclaves> in namespace "urn:y"; expected <enclaves>/,
    );
    expectCode(() => parsePolicy("<dds/>"), "FR_ROS2_POLICY_INVALID", /not <dds>$/);
  });
});

describe("governance", () => {
  it("defaults to sros2's default governance.xml", () => {
    const norm = (s: string) => s.replace(/\s+/g, " ").trim();
    expect(norm(governanceXml())).toBe(
      norm(fs.readFileSync(path.join(vectors, "defaults/governance.xml"), "utf8")),
    );
  });

  it("takes options and validates generated documents with xmllint against the schemas", async () => {
    const gov = governanceXml({
      domains: [3],
      allowUnauthenticatedParticipants: true,
      enableJoinAccessControl: false,
      discoveryProtectionKind: "SIGN",
      rtpsProtectionKind: "NONE",
      topicRules: [
        { topicExpression: "rt/camera/*", dataProtectionKind: "SIGN", enableReadAccessControl: false },
        { topicExpression: "*" },
      ],
    });
    expect(gov).toContain("<allow_unauthenticated_participants>true</allow_unauthenticated_participants>");
    expect(gov).toContain("<rtps_protection_kind>NONE</rtps_protection_kind>");
    const govFile = path.join(tmp, "governance.xml");
    fs.writeFileSync(govFile, gov);
    const permFiles = ["talker_listener", "add_two_ints", "minimal_action"].map((name) => {
      const f = path.join(tmp, `${name}.permissions.xml`);
      const policy = loadPolicyFile(path.join(vectors, "policies", `${name}.policy.xml`));
      fs.writeFileSync(f, permissionsXml(grantsFromPolicy(policy, validity)));
      return f;
    });
    const schemas = path.join(vectors, "schemas");
    const g = await run("xmllint", [
      "--noout",
      "--nonet",
      "--schema",
      path.join(schemas, "governance.xsd"),
      govFile,
    ]);
    expect(g.stderr).toMatch(/validates/);
    const p = await run("xmllint", [
      "--noout",
      "--nonet",
      "--schema",
      path.join(schemas, "permissions.xsd"),
      ...permFiles,
    ]);
    expect(p.stderr.match(/validates/g)?.length).toBe(3);
  });

  it("refuses invalid options", () => {
    expectCode(() => governanceXml({ domains: [300] }), "FR_VALIDATION", /0–232/);
    expectCode(() => governanceXml({ rtpsProtectionKind: "LOUD" as never }), "FR_VALIDATION");
  });
});
