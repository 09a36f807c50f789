import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

// What an operator sees from `fleetroot server --config FILE` when the file itself is wrong.
describe("server --config with a broken file", () => {
  it("prints one line naming the file and the problem, no stack trace, and exits non-zero", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-config-cli-"));
    const two = join(dir, "two.yaml");
    writeFileSync(two, "listen: 127.0.0.1:0\n---\nlisten: 127.0.0.1:0\n");
    const list = join(dir, "list.yaml");
    writeFileSync(list, "- listen: 127.0.0.1:0\n");
    const asDir = join(dir, "conf.d");
    mkdirSync(asDir);
    const cases: [string, string][] = [
      [two, 'line 2: a second YAML document starts here ("---")'],
      [list, "the file holds a list, but a configuration is a mapping"],
      [asDir, "it is a directory, not a file (EISDIR)"],
    ];
    const runs = await Promise.all(
      cases.map(([f]) =>
        cli(["server", "--config", f], { FLEETROOT_DATA_DIR: join(dir, "data") }, { timeoutMs: 40_000 }),
      ),
    );
    runs.forEach((r, i) => {
      const [f, want] = cases[i]!;
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(f);
      expect(lines[0]).toContain(want);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).not.toContain("listening");
    });
  }, 60_000);
});
