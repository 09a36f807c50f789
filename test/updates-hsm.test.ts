import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
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
