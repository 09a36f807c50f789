import { describe, expect, it } from "vitest";
import { FleetError } from "../../errors/index.js";
import { Acl } from "./acl.js";
import { DEFAULT_POLICY_TEXT } from "./builtin.js";
import { MAX_POLICY_BYTES } from "./hcl.js";
import { parsePolicy } from "./policy.js";

const acl = (...texts: string[]): Acl => new Acl(texts.map((t, i) => parsePolicy(`p${i}`, t)));

function syntaxErr(text: string): FleetError {
  try {
    parsePolicy("bad", text);
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    expect((e as FleetError).code).toBe("FR_POLICY_SYNTAX");
    return e as FleetError;
  }
  throw new Error("expected a syntax error");
}

describe("policy parsing", () => {
  it("reads several path blocks, all comment styles and the legacy shorthand", () => {
    const p = parsePolicy(
      "x",
      `# hash comment
      // slash comment
      /* block
         comment */
      path "secret/data/app" { capabilities = ["read", "list"] }
      path "/secret/old" { policy = "write" }
      path "sys/*" {
        capabilities = ["sudo", "read",]
      }`,
    );
    expect(p.rules.map((r) => r.path)).toEqual(["secret/data/app", "secret/old", "sys/*"]);
    expect([...p.rules[1]!.capabilities].sort()).toEqual([
      "create",
      "delete",
      "list",
      "patch",
      "read",
      "update",
    ]);
    expect([...p.rules[2]!.capabilities].sort()).toEqual(["read", "sudo"]);
  });

  it("gives the same result for HCL and JSON", () => {
    const hcl = `path "secret/+/db" { capabilities = ["read"] }
      path "secret/*" { capabilities = ["list"] allowed_parameters = { "ttl" = ["1h", "2h"] } }
      path "secret/deny" { capabilities = ["deny"] }`;
    const json = JSON.stringify({
      path: {
        "secret/+/db": { capabilities: ["read"] },
        "secret/*": { capabilities: ["list"], allowed_parameters: { ttl: ["1h", "2h"] } },
        "secret/deny": { capabilities: ["deny"] },
      },
    });
    const a = parsePolicy("a", hcl);
    const b = parsePolicy("a", json);
    expect(b).toEqual(a);
    const paths = ["secret/x/db", "secret/x", "secret/deny", "other", "secret/x/db/y"];
    for (const path of paths) {
      expect(new Acl([b]).capabilities(path)).toEqual(new Acl([a]).capabilities(path));
    }
  });

  it("accepts the JSON form with a list of path objects", () => {
    const p = parsePolicy("j", `{"path": [{"a/b": {"capabilities": ["read"]}}, {"c": {"policy": "deny"}}]}`);
    expect(p.rules.map((r) => [r.path, [...r.capabilities]])).toEqual([
      ["a/b", ["read"]],
      ["c", ["deny"]],
    ]);
  });

  it("names the line and column of a syntax error", () => {
    expect(syntaxErr(`path "a" {\n  capabilities = ["read"\n}`).message).toMatch(/line 3, column 1/);
    expect(syntaxErr(`path "a" {\n  capabilities = ["reed"]\n}`).message).toMatch(
      /line 2, column 19: unknown capability "reed"/,
    );
    expect(syntaxErr(`path "a" {\n  capabilites = ["read"]\n}`).message).toMatch(
      /line 2, column 3: unknown key/,
    );
    expect(
      syntaxErr(`path "a" { capabilities = ["read"] }\npath "b" { capabilities = ["read"]`).message,
    ).toMatch(/line 2, column 10: the \{ is never closed/);
    expect(syntaxErr(`path "a { }\n`).message).toMatch(/line 1, column 6: the string is not closed/);
    expect(syntaxErr(`path "a { }`).message).toMatch(/line 1, column 6: the string is never closed/);
    expect(syntaxErr(`/* open`).message).toMatch(/line 1, column 1: the \/\* comment is never closed/);
    expect(syntaxErr(`{"path": {"a": {"capabilities": "read"}}}`).message).toMatch(
      /column 33: capabilities must be a list/,
    );
    expect(syntaxErr(`path "a" { policy = "admin" }`).message).toMatch(/policy must be/);
    expect(syntaxErr(`path "a/*/b" { capabilities = ["read"] }`).message).toMatch(
      /only as the last character/,
    );
    expect(syntaxErr(`path "a" { }`).message).toMatch(/has no capabilities/);
    expect(syntaxErr(`path "a" { control_group = {} }`).message).toMatch(/not supported/);
    expect(syntaxErr(`token "a" { }`).message).toMatch(/unknown key "token"/);
    expect(syntaxErr(`path "a" { capabilities = ["read"] } }`).message).toMatch(/expected a key/);
  });

  it("refuses oversized and too deeply nested input", () => {
    const big = `path "a" { capabilities = ["read"] }\n`.repeat(Math.ceil(MAX_POLICY_BYTES / 30));
    expect(syntaxErr(big).message).toMatch(/larger than/);
    const deep = `path "a" { allowed_parameters = ${"[".repeat(40)}${"]".repeat(40)} }`;
    expect(syntaxErr(deep).message).toMatch(/nests deeper/);
  });

  it("parses Vault's default policy text", () => {
    const p = parsePolicy("default", DEFAULT_POLICY_TEXT);
    const a = new Acl([p]);
    expect(a.allows("auth/token/lookup-self", "read")).toBe(true);
    expect(a.allows("auth/token/renew-self", "update")).toBe(true);
    expect(a.allows("sys/wrapping/unwrap", "update")).toBe(true);
    expect(a.allows("auth/token/create", "update")).toBe(false);
  });
});

describe("ACL evaluation", () => {
  it("denies by default", () => {
    const a = acl(`path "secret/a" { capabilities = ["read"] }`);
    expect(a.allows("secret/b", "read")).toBe(false);
    expect(a.allows("secret/a", "update")).toBe(false);
    expect(a.capabilities("nothing")).toEqual(["deny"]);
    expect(acl().allows("secret/a", "read")).toBe(false);
  });

  it("treats a trailing * as a prefix match", () => {
    const a = acl(`path "secret/foo*" { capabilities = ["read"] }`);
    for (const p of ["secret/foo", "secret/foobar", "secret/foo/bar/baz"])
      expect(a.allows(p, "read")).toBe(true);
    for (const p of ["secret/fo", "secret/bar/foo", "secretfoo"]) expect(a.allows(p, "read")).toBe(false);
  });

  it("matches + against exactly one segment", () => {
    const a = acl(
      `path "secret/+/db" { capabilities = ["read"] }`,
      `path "kv/+/+/x*" { capabilities = ["update"] }`,
    );
    expect(a.allows("secret/app/db", "read")).toBe(true);
    expect(a.allows("secret/other/db", "read")).toBe(true);
    expect(a.allows("secret/db", "read")).toBe(false);
    expect(a.allows("secret/a/b/db", "read")).toBe(false);
    expect(a.allows("secret/app/db/more", "read")).toBe(false);
    expect(a.allows("secret/app/dbx", "read")).toBe(false);
    expect(a.allows("kv/a/b/x", "update")).toBe(true);
    expect(a.allows("kv/a/b/xyz/deeper", "update")).toBe(true);
    expect(a.allows("kv/a/x", "update")).toBe(false);
    expect(a.allows("kv/a/b/y", "update")).toBe(false);
  });

  it("matches + as the whole last segment with and without *", () => {
    const a = acl(`path "team/+" { capabilities = ["read"] }`, `path "ops/+*" { capabilities = ["read"] }`);
    expect(a.allows("team/a", "read")).toBe(true);
    expect(a.allows("team/a/b", "read")).toBe(false);
    expect(a.allows("ops/a", "read")).toBe(true);
    expect(a.allows("ops/a/b/c", "read")).toBe(true);
  });

  it("lets an exact path beat any glob", () => {
    const a = acl(
      `path "secret/*" { capabilities = ["read", "update"] }`,
      `path "secret/a" { capabilities = ["list"] }`,
    );
    expect(a.allows("secret/a", "read")).toBe(false);
    expect(a.capabilities("secret/a")).toEqual(["list"]);
    expect(a.allows("secret/b", "update")).toBe(true);
  });

  it("picks the most specific glob by Vault's priority rules", () => {
    // rule 1: the later first wildcard wins
    let a = acl(
      `path "secret/*" { capabilities = ["read"] }`,
      `path "secret/app/*" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/app/x")).toEqual(["update"]);
    expect(a.capabilities("secret/other")).toEqual(["read"]);
    a = acl(
      `path "secret/+/x" { capabilities = ["read"] }`,
      `path "secret/a/+" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/a/x")).toEqual(["update"]);
    // rule 2: not ending in * beats ending in *
    a = acl(
      `path "secret/+/x" { capabilities = ["read"] }`,
      `path "secret/+/x*" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/a/x")).toEqual(["read"]);
    expect(a.capabilities("secret/a/xy")).toEqual(["update"]);
    // rule 3: fewer + segments win — Vault's own example: "secret/*" beats "secret/+/+/foo/*"
    a = acl(
      `path "secret/*" { capabilities = ["read"] }`,
      `path "secret/+/+/foo/*" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/a/b/foo/c")).toEqual(["read"]);
    // rule 4: longer wins
    a = acl(
      `path "secret/+/a*" { capabilities = ["read"] }`,
      `path "secret/+/ab*" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/x/abc")).toEqual(["update"]);
    // rule 5: lexically larger wins
    a = acl(
      `path "secret/+/+/a" { capabilities = ["read"] }`,
      `path "secret/+/b/+" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/x/b/a")).toEqual(["update"]);
  });

  it("merges one path across policies and lets deny win", () => {
    const a = acl(
      `path "secret/a" { capabilities = ["read"] }`,
      `path "secret/a" { capabilities = ["update"] }`,
    );
    expect(a.capabilities("secret/a")).toEqual(["read", "update"]);
    const d = acl(
      `path "secret/*" { capabilities = ["read", "update", "sudo"] }`,
      `path "secret/*" { capabilities = ["deny"] }`,
      `path "secret/*" { capabilities = ["list"] }`,
    );
    expect(d.capabilities("secret/x")).toEqual(["deny"]);
    expect(d.allows("secret/x", "read")).toBe(false);
    // deny and grant in one block: deny wins there too
    expect(acl(`path "x" { capabilities = ["read", "deny"] }`).allows("x", "read")).toBe(false);
    // a more specific deny removes what a broader glob gave
    const s = acl(
      `path "secret/*" { capabilities = ["read"] }`,
      `path "secret/private/*" { capabilities = ["deny"] }`,
    );
    expect(s.allows("secret/public", "read")).toBe(true);
    expect(s.allows("secret/private/k", "read")).toBe(false);
  });

  it("grants list on a folder through exact and glob rules", () => {
    expect(
      acl(`path "sys/policies/acl" { capabilities = ["list"] }`).allows("sys/policies/acl", "list"),
    ).toBe(true);
    expect(
      acl(`path "sys/policies/acl/*" { capabilities = ["list"] }`).allows("sys/policies/acl", "list"),
    ).toBe(true);
    expect(
      acl(`path "sys/policies/acl/*" { capabilities = ["read"] }`).allows("sys/policies/acl", "list"),
    ).toBe(false);
  });

  it("lets the root policy do everything", () => {
    const a = new Acl([parsePolicy("root", ""), parsePolicy("x", `path "*" { capabilities = ["deny"] }`)]);
    expect(a.allows("anything/at/all", "sudo")).toBe(true);
    expect(a.capabilities("x")).toEqual(["root"]);
  });

  it("enforces required, denied and allowed parameters", () => {
    const a = acl(`path "pki/issue/web" {
      capabilities = ["update"]
      required_parameters = ["common_name"]
      allowed_parameters = { "common_name" = ["*.example.com"] "ttl" = [] }
      denied_parameters = { "ttl" = ["8760h"] }
    }`);
    expect(a.allows("pki/issue/web", "update", { common_name: "a.example.com" })).toBe(true);
    expect(a.allows("pki/issue/web", "update", { common_name: "a.example.com", ttl: "1h" })).toBe(true);
    expect(a.allows("pki/issue/web", "update", { common_name: "a.example.com", ttl: "8760h" })).toBe(false);
    expect(a.allows("pki/issue/web", "update", { common_name: "evil.org" })).toBe(false);
    expect(a.allows("pki/issue/web", "update", { common_name: "a.example.com", other: 1 })).toBe(false);
    expect(a.allows("pki/issue/web", "update", { ttl: "1h" })).toBe(false);
    expect(a.allows("pki/issue/web", "update", {})).toBe(false);
    const all = acl(`path "x" { capabilities = ["create"] denied_parameters = { "*" = [] } }`);
    expect(all.allows("x", "create", {})).toBe(true);
    expect(all.allows("x", "create", { a: 1 })).toBe(false);
    const lists = acl(`path "x" { capabilities = ["update"] allowed_parameters = { "tags" = ["a", "b"] } }`);
    expect(lists.allows("x", "update", { tags: ["a", "b"] })).toBe(true);
    expect(lists.allows("x", "update", { tags: ["a", "c"] })).toBe(false);
  });

  it("merges parameter constraints across policies as Vault does", () => {
    const a = acl(
      `path "x" { capabilities = ["update"] allowed_parameters = { "n" = ["1"] } }`,
      `path "x" { capabilities = ["update"] allowed_parameters = { "n" = ["2"] } }`,
    );
    expect(a.allows("x", "update", { n: "2" })).toBe(true);
    expect(a.allows("x", "update", { n: "3" })).toBe(false);
    const any = acl(
      `path "x" { capabilities = ["update"] allowed_parameters = { "n" = ["1"] } }`,
      `path "x" { capabilities = ["update"] allowed_parameters = { "n" = [] } }`,
    );
    expect(any.allows("x", "update", { n: "3" })).toBe(true);
  });
});
