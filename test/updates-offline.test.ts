import crypto from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchVerifiedTarget } from "../src/agent/update.js";
import { createKeyManager } from "../src/keys/index.js";
import { addSignatures, serialize, tufSigner } from "../src/updates/index.js";
import { cli } from "./helpers/cli.js";
import { startUpdatesFixture, type UpdatesFixture } from "./updates-fixture.js";

/**
 * A repository whose targets key is offline from the start: until the first targets version is signed
 * elsewhere and imported, nothing that references it is published, clients get a clear "no timestamp"
 * outcome, and `updates status` says what the repository is waiting for.
 */
describe("updates init with an offline targets key", () => {
  let f: UpdatesFixture;
  let env: Record<string, string> = {};
  const work = mkdtempSync(join(tmpdir(), "fr-updates-offline-"));
  const offlineUri = `file:${join(work, "offline-targets.pem")}`;
  const meta = (file: string) => fetch(`${f.url}/v1/updates/off/metadata/${file}`);
  const rootDir = async () => {
    const dir = mkdtempSync(join(work, "client-"));
    const res = await meta("1.root.json");
    expect(res.status).toBe(200);
    writeFileSync(join(dir, "root.json"), Buffer.from(await res.arrayBuffer()));
    return dir;
  };
  const ok = async (args: string[]) => {
    const r = await cli(args, env);
    expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    f = await startUpdatesFixture();
    env = { FLEETROOT_ADDR: f.url, FLEETROOT_TOKEN: f.token };
    const keys = createKeyManager();
    const offline = await keys.generate(offlineUri, "ed25519");
    await keys.close();
    writeFileSync(
      join(work, "offline.pub"),
      crypto
        .createPublicKey({ key: Buffer.from(offline.publicKey), format: "der", type: "spki" })
        .export({ type: "spki", format: "pem" })
        .toString(),
    );
  }, 60_000);
  afterAll(async () => f?.close());

  it("publishes no snapshot or timestamp while targets waits for its offline signature", async () => {
    const init = JSON.parse(
      (
        await ok([
          "-f",
          "json",
          "updates",
          "init",
          "off",
          "--root-key",
          f.key("off-root"),
          "--targets-pubkey",
          join(work, "offline.pub"),
          "--snapshot-key",
          f.key("off-snapshot"),
          "--timestamp-key",
          f.key("off-timestamp"),
          "--generate",
          "ed25519",
        ])
      ).stdout,
    ) as { published: Array<{ role: string }>; pending: Array<{ role: string; version: number }> };
    expect(init.published.map((p) => p.role)).toEqual(["root"]);
    expect(init.pending).toEqual([expect.objectContaining({ role: "targets", version: 1 })]);
    // Root is served (devices get it at enrollment); nothing that would reference unsigned targets is.
    expect((await meta("1.root.json")).status).toBe(200);
    for (const file of [
      "timestamp.json",
      "snapshot.json",
      "1.snapshot.json",
      "targets.json",
      "1.targets.json",
    ])
      expect((await meta(file)).status, file).toBe(404);

    // The refresh job does not publish them either.
    expect((await f.repos.refreshOnline("off")).published).toEqual([]);
    expect((await meta("timestamp.json")).status).toBe(404);

    // A tuf-js client gets a clear outcome: there is no timestamp to update from (not broken metadata).
    const dir = await rootDir();
    const err = (await f
      .updater("off", dir)
      .refresh()
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as Error & { statusCode?: number };
    expect(err?.constructor.name).toBe("DownloadHTTPError");
    expect(err.statusCode).toBe(404);
    // The agent's client says what a 404 there means (was: tuf-js's bare "Failed to download").
    const agentErr = (await fetchVerifiedTarget(
      {
        repoUrl: `${f.url}/v1/updates/off`,
        trustedRoot: join(dir, "root.json"),
        metadataDir: mkdtempSync(join(work, "agent-")),
      },
      "app/v1.bin",
    ).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(agentErr?.code).toBe("FR_UPDATES_VERIFY");
    expect(agentErr.message).toContain("serves no timestamp metadata (404)");
    expect(agentErr.message).toContain("`fleetroot updates status off`");

    // status says so, in JSON and for people.
    const st = JSON.parse((await ok(["-f", "json", "updates", "status", "off"])).stdout) as {
      servable: boolean;
      waiting: string | null;
    };
    expect(st.servable).toBe(false);
    expect(st.waiting).toMatch(/targets v1 .*offline signature/);
    const table = (await ok(["updates", "status", "off"])).stdout;
    expect(table).toMatch(/NOT SERVED: .*targets v1 .*offline signature/);
    expect(table).toContain("updates export off targets");
  }, 180_000);

  it("publishes snapshot and timestamp once the signed targets is imported; clients then update", async () => {
    await ok(["updates", "add", "off", "app/v1.bin", join(work, "offline.pub")]);
    await ok(["updates", "publish", "off"]);
    expect((await meta("timestamp.json")).status).toBe(404);
    const exported = join(work, "targets.json");
    await ok(["updates", "export", "off", "targets", "-o", exported]);
    const keys = createKeyManager();
    const env1 = JSON.parse(readFileSync(exported, "utf8")) as Parameters<typeof addSignatures>[0];
    writeFileSync(exported, serialize(await addSignatures(env1, [tufSigner(await keys.open(offlineUri))])));
    await keys.close();
    const imported = JSON.parse((await ok(["-f", "json", "updates", "import", "off", exported])).stdout) as {
      published: Array<{ role: string }>;
    };
    expect(imported.published.map((p) => p.role)).toEqual(["targets", "snapshot", "timestamp"]);
    const st = JSON.parse((await ok(["-f", "json", "updates", "status", "off"])).stdout) as {
      servable: boolean;
      waiting: string | null;
    };
    expect(st).toMatchObject({ servable: true, waiting: null });
    expect((await ok(["updates", "status", "off"])).stdout).not.toContain("NOT SERVED");

    const u = f.updater("off", await rootDir());
    await u.refresh();
    const info = await u.getTargetInfo("app/v1.bin");
    expect(info?.length).toBe(readFileSync(join(work, "offline.pub")).length);
  }, 180_000);
});
