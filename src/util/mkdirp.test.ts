import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { mkdirp, mkdirpSync } from "./mkdirp.js";

const modeOf = (p: string) => statSync(p).mode & 0o777;

describe("mkdirp", () => {
  const root = mkdtempSync(path.join(tmpdir(), "fr-mkdirp-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("creates nested directories with the mode and returns the first one it made", async () => {
    const d = path.join(root, "a", "b", "c");
    expect(mkdirpSync(d, 0o700)).toBe(path.join(root, "a"));
    for (const p of ["a", "a/b", "a/b/c"]) expect(modeOf(path.join(root, p))).toBe(0o700);

    const e = path.join(root, "x", "y");
    expect(await mkdirp(e, 0o750)).toBe(path.join(root, "x"));
    for (const p of ["x", "x/y"]) expect(modeOf(path.join(root, p)) & ~0o022).toBe(0o750 & ~0o022);
  });

  it("an existing directory is fine and returns undefined; a relative path resolves like mkdir", async () => {
    mkdirSync(path.join(root, "exists"));
    expect(mkdirpSync(path.join(root, "exists"))).toBeUndefined();
    expect(await mkdirp(path.join(root, "exists"))).toBeUndefined();
    const rel = path.relative(process.cwd(), path.join(root, "rel", "sub"));
    expect(await mkdirp(rel)).toBe(path.join(root, "rel"));
    expect(statSync(path.join(root, "rel", "sub")).isDirectory()).toBe(true);
  });

  it("concurrent calls for the same tree both succeed (EEXIST on a directory is a race, not an error)", async () => {
    const d = path.join(root, "race", "one", "two");
    await Promise.all([mkdirp(d), mkdirp(d), mkdirp(path.join(root, "race", "one"))]);
    expect(statSync(d).isDirectory()).toBe(true);
  });

  it("a file in the path fails with ENOTDIR; a file at the path with EEXIST, like Node", async () => {
    const file = path.join(root, "file");
    writeFileSync(file, "x");
    expect(() => mkdirpSync(path.join(file, "a", "b"))).toThrow(expect.objectContaining({ code: "ENOTDIR" }));
    await expect(mkdirp(path.join(file, "a"))).rejects.toMatchObject({ code: "ENOTDIR", syscall: "mkdir" });
    expect(() => mkdirpSync(file)).toThrow(expect.objectContaining({ code: "EEXIST" }));
    await expect(mkdirp(file)).rejects.toMatchObject({ code: "EEXIST" });
  });

  it("a path under /proc fails fast instead of spinning (Node 20's recursive mkdir loops forever)", async () => {
    const started = Date.now();
    await expect(mkdirp("/proc/self/nope/x", 0o700)).rejects.toMatchObject({ code: "ENOENT" });
    expect(Date.now() - started).toBeLessThan(500);
  }, 5_000);

  it("mkdirpSync under /proc fails fast too (in a child process, so a regression cannot hang the run)", () => {
    const url = pathToFileURL(path.join(import.meta.dirname, "mkdirp.ts")).href;
    const script =
      `const { mkdirpSync } = await import(${JSON.stringify(url)}); const t = Date.now();` +
      `try { mkdirpSync("/proc/self/nope/x"); console.log("created"); }` +
      `catch (e) { console.log(JSON.stringify({ code: e.code, ms: Date.now() - t })); }`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      timeout: 20_000,
      encoding: "utf8",
    });
    expect(r.signal, r.stderr).toBeNull();
    const out = JSON.parse(r.stdout.trim()) as { code: string; ms: number };
    expect(out.code).toBe("ENOENT");
    expect(out.ms).toBeLessThan(500);
  }, 30_000);
});
