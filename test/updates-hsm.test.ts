import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { UpdatesRepository } from "../src/updates/index.js";
import { keysThatFailToSign } from "./helpers/failing-keys.js";
import { softHsmToken, type SoftHsmToken } from "./helpers/softhsm.js";
import { startUpdatesFixture, type UpdatesFixture } from "./updates-fixture.js";

let token: SoftHsmToken;
let f: UpdatesFixture;
beforeAll(async () => {
  token = await softHsmToken("updates-hsm"); // before any pkcs11 key is opened in this process
  f = await startUpdatesFixture();
}, 60_000);
afterAll(async () => {
  await f?.close();
});

it("a targets key in SoftHSM2 signs metadata that tuf-js accepts", async () => {
  const res = await f.repos.init("hsm", {
    keys: {
      root: [{ uri: f.key("h-root"), generate: "ed25519" }],
      targets: [{ uri: token.uri("tuf-targets"), generate: "ecdsa-p256" }],
      snapshot: [{ uri: f.key("h-snap"), generate: "ed25519" }],
      timestamp: [{ uri: f.key("h-ts"), generate: "ed25519" }],
    },
  });
  expect(res.pending).toEqual([]);
  await f.repos.addTargets("hsm", [{ path: "fw.bin", content: Buffer.from("signed in an HSM") }]);
  await f.repos.publish("hsm");
  const dir = mkdtempSync(join(tmpdir(), "fr-updates-hsm-"));
  const root = await fetch(`${f.url}/v1/updates/hsm/metadata/1.root.json`);
  writeFileSync(join(dir, "root.json"), Buffer.from(await root.arrayBuffer()));
  const u = f.updater("hsm", dir);
  await u.refresh();
  const targets = JSON.parse(readFileSync(join(dir, "targets.json"), "utf8")) as {
    signatures: Array<{ sig: string }>;
  };
  expect(targets.signatures[0]?.sig).toMatch(/^30/); // a DER ECDSA signature, as securesystemslib writes it
  const info = await u.getTargetInfo("fw.bin");
  await u.downloadTarget(info!, join(dir, "fw.bin"));
  expect(readFileSync(join(dir, "fw.bin"), "utf8")).toBe("signed in an HSM");
});

it("a failed request removes the key pair it generated in the token, and only that one", async () => {
  const core = f.t.server.core;
  // The timestamp key opens but cannot sign (as when a token is pulled out between the two): init fails
  // after the targets key was generated inside SoftHSM2.
  const keys = keysThatFailToSign(core.keys, "broken-ts");
  const repos = new UpdatesRepository({
    store: core.store,
    keys,
    clock: f.clock,
    requestKeyPolicy: core.requestKeyPolicy,
  });
  // A key already in the token, which the request opens rather than generates: it must stay.
  const kept = await core.keys.generate(token.uri("tuf-kept"), "ecdsa-p256");
  await expect(
    repos.init("hsm-failed", {
      keys: {
        root: [{ uri: token.uri("tuf-kept"), generate: "ecdsa-p256" }],
        targets: [{ uri: token.uri("tuf-fresh"), generate: "ecdsa-p256" }],
        snapshot: [{ uri: f.key("hf-snap"), generate: "ed25519" }],
        timestamp: [{ uri: f.key("broken-ts"), generate: "ed25519" }],
      },
    }),
  ).rejects.toMatchObject({ code: "FR_KEY_BACKEND" });
  expect(await repos.list()).not.toContain("hsm-failed");
  await expect(core.keys.open(token.uri("tuf-fresh"))).rejects.toMatchObject({ code: "FR_KEY_NOT_FOUND" });
  const still = await core.keys.open(token.uri("tuf-kept"));
  expect(Buffer.from(still.publicKey).equals(Buffer.from(kept.publicKey))).toBe(true);
  // Both halves went: the label can be generated again.
  await core.keys.generate(token.uri("tuf-fresh"), "ed25519");
});
