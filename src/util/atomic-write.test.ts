import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeFileAtomic, writeNewSynced } from "./atomic-write.js";

describe("atomic writes", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fr-atomic-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("replaces a file with the mode asked for and leaves no temporary file", async () => {
    const file = path.join(dir, "sub", "a.json");
    await writeFileAtomic(file, "one\n", 0o600);
    await writeFileAtomic(file, new TextEncoder().encode("two\n"), 0o600);
    expect(readFileSync(file, "utf8")).toBe("two\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(["a.json"]);
  });

  it("a rename that fails leaves the target as it was and no temporary file", async () => {
    const target = path.join(dir, "busy");
    mkdirSync(target);
    writeFileSync(path.join(target, "inside"), "x");
    await expect(writeFileAtomic(target, "data")).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir).filter((n) => n.startsWith(".busy"))).toEqual([]);
    expect(readFileSync(path.join(target, "inside"), "utf8")).toBe("x");
  });

  it("a write that fails removes the file it created", async () => {
    const file = path.join(dir, "half");
    // Data the write refuses after the file is open: the failure path a full disk takes.
    await expect(writeNewSynced(file, { not: "bytes" } as unknown as string, 0o600)).rejects.toThrow();
    expect(readdirSync(dir)).not.toContain("half");
    await expect(writeNewSynced(file, "ok", 0o600)).resolves.toBeUndefined();
    await expect(writeNewSynced(file, "again", 0o600)).rejects.toThrow(/EEXIST/);
    expect(readFileSync(file, "utf8")).toBe("ok");
  });
});
