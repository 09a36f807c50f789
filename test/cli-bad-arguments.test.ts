import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

// Checked before anything is generated or sent: no server is needed, and none is reached.
const offline = { FLEETROOT_ADDR: "http://127.0.0.1:9", FLEETROOT_TOKEN: "frs.unused" };

describe("CLI arguments that cannot work are refused before any work is done", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-cli-args-"));

  it("ca root create with --out naming a directory, or a file in a missing one: exit 2, no key left behind", async () => {
    for (const [out, why] of [
      [dir, /--out .* is a directory; name a file in it/],
      [join(dir, "missing", "root.pem"), /the directory .*missing does not exist; create it first/],
    ] as const) {
      const key = join(dir, `root-${Math.random().toString(36).slice(2)}.key`);
      const r = await cli(
        ["ca", "root", "create", "--key", `file:${key}`, "--common-name", "Fleet Root", "--out", out],
        offline,
      );
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(why);
      expect(existsSync(key)).toBe(false);
    }
  });

  it("operator unseal --reset with a key is a usage error, not a silently ignored argument", async () => {
    const r = await cli(["operator", "unseal", "--reset", "garbage"], offline);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--reset .* takes no key/);
  });

  it("device provisioner write with bad YAML names the file, line and column in one line", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "type: join_token\nclaims: [a, b\nca_role: robots\n");
    const r = await cli(["device", "provisioner", "write", "p9", "--config", bad], offline);
    expect(r.code).toBe(1);
    const first = r.stderr.trim().split("\n")[0] ?? "";
    expect(first).toMatch(/bad\.yaml: line \d+, column \d+: YAML syntax error: .*; check the indentation/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const dup = join(dir, "dup.yaml");
    writeFileSync(dup, "type: join_token\ntype: x509\n");
    const d = await cli(["device", "provisioner", "write", "p9", "--config", dup], offline);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/dup\.yaml: line 2, column 1: key "type" appears twice/);
  });
});
