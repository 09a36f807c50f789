import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tables } from "../src/updates/repo-db.js";
import { startUpdatesFixture, type UpdatesFixture } from "./updates-fixture.js";

/**
 * Bad input to the update routes is refused when it is written, and a refused request changes nothing:
 * no rows, no metadata versions, no key files.
 */
let f: UpdatesFixture;
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${f.url}/v1/updates/${path}`, {
    method,
    headers: { "x-vault-token": f.token, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
};
const file = (name: string) => join(f.dir, "keys", `${name}.pem`);
const gen = (name: string) => ({ uri: f.key(name), generate: "ed25519" });
const keysOf = (p: string) => ({
  root: [gen(`${p}-root`)],
  targets: [gen(`${p}-targets`)],
  snapshot: [gen(`${p}-snapshot`)],
  timestamp: [gen(`${p}-timestamp`)],
});
type Status = { roles: Array<{ role: string; version: number | null; keys: number }>; targets: number };
const status = async (repo: string) => (await api("GET", `${repo}/status`)).body?.data as Status;

beforeAll(async () => {
  f = await startUpdatesFixture();
  for (const repo of ["fw", "hw2"]) {
    expect((await api("POST", `${repo}/init`, { keys: keysOf(repo) })).status).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  await f?.close();
});

describe("update routes refuse what publish could not sign", () => {
  it("refuses target custom metadata that is not canonical JSON (lone surrogate poisoned publish)", async () => {
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 70; i++) at = (at.n = {}) as Record<string, unknown>;
    for (const [custom, why] of [
      [{ note: "\ud800" }, /lone surrogate/],
      [{ version: 1.5 }, /integers/],
      [deep, /nesting/],
    ] as const) {
      const res = await api("PUT", "fw/targets/poison.bin", { content_base64: "aGk=", custom });
      expect(res.status).toBe(400);
      expect(res.body?.code).toBe("FR_UPDATES_TARGET");
      expect(String(res.body?.errors)).toMatch(why);
      expect(String(res.body?.errors)).toMatch(/poison\.bin/);
    }
    expect((await status("fw")).targets).toBe(0);
    expect((await fetch(`${f.url}/v1/updates/fw/targets/poison.bin`)).status).toBe(404);
    // Well-formed custom metadata (a surrogate pair is fine) still goes in, and the repository publishes.
    const ok = await api("PUT", "fw/targets/ok.bin", {
      content_base64: "aGk=",
      custom: { n: "\ud83d\ude00" },
    });
    expect(ok.status).toBe(200);
    expect((await api("POST", "fw/publish")).status).toBe(200);
    expect((await api("POST", "fw/rotate-key", { role: "snapshot", threshold: 1 })).status).toBe(200);
  });

  it("publishes a target named __proto__ as a key like any other", async () => {
    expect((await api("PUT", "fw/targets/__proto__", { content_base64: "aGk=" })).status).toBe(200);
    expect((await api("POST", "fw/publish")).status).toBe(200);
    const res = await fetch(`${f.url}/v1/updates/fw/metadata/targets.json`);
    const targets = (JSON.parse(await res.text()) as { signed: { targets: object } }).signed.targets;
    expect(Object.keys(targets)).toContain("__proto__");
    expect((await api("DELETE", "fw/targets/__proto__")).status).toBe(200);
  });

  it("refuses a delegation path with a lone surrogate before generating its key", async () => {
    const res = await api("POST", "fw/delegations", {
      name: "poisoned",
      keys: [gen("fw-poisoned")],
      paths: ["a\ud800"],
    });
    expect(res.status).toBe(400);
    expect(res.body?.code).toBe("FR_UPDATES_ROLE");
    expect(String(res.body?.errors)).toMatch(/lone surrogate/);
    expect((await status("fw")).roles.map((r) => r.role)).not.toContain("poisoned");
    expect(existsSync(file("fw-poisoned"))).toBe(false);
    expect((await api("POST", "fw/publish")).status).toBe(200);
  });
});

describe("a refused rotation or init leaves nothing behind", () => {
  it("rotate-key that fails after its first write stores no root and removes its generated key", async () => {
    // A target stored by a server without the write-time check: the rotation re-signs targets and fails.
    await tables(f.t.server.core.store.db)
      .insertInto("updates_targets")
      .values({
        repo: "hw2",
        path: "poison.bin",
        role: "targets",
        length: 2,
        sha256: "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4",
        custom: JSON.stringify({ note: "\ud800" }),
      })
      .execute();
    const before = await status("hw2");
    const res = await api("POST", "hw2/rotate-key", { role: "targets", add: [gen("h2t2")] });
    expect(res.status).toBe(400);
    expect(await status("hw2")).toEqual(before);
    expect(before.roles.find((r) => r.role === "root")).toMatchObject({ version: 1 });
    expect(before.roles.find((r) => r.role === "targets")).toMatchObject({ keys: 1 });
    expect((await fetch(`${f.url}/v1/updates/hw2/metadata/2.root.json`)).status).toBe(404);
    expect(existsSync(file("h2t2"))).toBe(false);
    // Removing the bad target unblocks the repository; the same rotation then succeeds.
    expect((await api("DELETE", "hw2/targets/poison.bin")).status).toBe(200);
    expect((await api("POST", "hw2/rotate-key", { role: "targets", add: [gen("h2t2")] })).status).toBe(200);
    expect(existsSync(file("h2t2"))).toBe(true);
  });

  it("init refused for a bad timestamp key generates no keys (public garbage, missing file)", async () => {
    for (const [repo, timestamp, code, httpStatus] of [
      ["bad1", [{ public: "garbage" }], "FR_UPDATES_KEY", 400],
      ["bad2", [{ uri: f.key("bad2-missing") }], "FR_KEY_NOT_FOUND", 404],
    ] as const) {
      const keys = { ...keysOf(repo), timestamp };
      const res = await api("POST", `${repo}/init`, { keys });
      expect(res.status, repo).toBe(httpStatus);
      expect(res.body?.code).toBe(code);
      expect((await api("GET", `${repo}/status`)).status).toBe(404);
      for (const role of ["root", "targets", "snapshot"]) {
        expect(existsSync(file(`${repo}-${role}`)), `${repo}-${role}`).toBe(false);
      }
    }
  });

  it("init that names one new key for two roles generates it once", async () => {
    const shared = gen("both-shared");
    const keys = { ...keysOf("both"), targets: [shared], snapshot: [{ uri: shared.uri }] };
    expect((await api("POST", "both/init", { keys })).status).toBe(200);
    expect((await status("both")).roles.find((r) => r.role === "timestamp")?.version).toBe(1);
  });
});

describe("a repository that does not exist", () => {
  it("is a 404 that names the command and the route that create it", async () => {
    const r = await api("GET", "no-such-repo/status");
    expect(r.status).toBe(404);
    expect(r.body?.code).toBe("FR_UPDATES_REPO_NOT_FOUND");
    expect((r.body?.errors as string[]).join(" ")).toContain(
      "`fleetroot updates init no-such-repo …` (API: POST updates/no-such-repo/init)",
    );
  });
});
