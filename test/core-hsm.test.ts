import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FleetError } from "../src/errors/index.js";
import { createKeyManager } from "../src/keys/index.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { softHsmToken } from "./helpers/softhsm.js";

describe("pkcs11 seal through SoftHSM2", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  for (const alg of ["aes-256", "rsa-2048"] as const) {
    it(`auto-unseals after a restart with no operator step (${alg} wrap key)`, async () => {
      const token = await softHsmToken(`seal-${alg}`);
      const uri = token.uri("fleetroot-seal");
      const km = createKeyManager();
      await km.generateWrapper(uri, alg);
      await km.close();

      const dir = mkdtempSync(join(tmpdir(), "fr-hsm-"));
      t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
        seal: { type: "pkcs11", key: uri },
        dataDir: dir,
      });
      expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({
        type: "pkcs11",
        initialized: false,
      });
      const init = await t.call("PUT", "sys/init", { recovery_shares: 1, recovery_threshold: 1 });
      expect(init.statusCode).toBe(200);
      const root = init.json().root_token as string;
      expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({
        initialized: true,
        sealed: false,
      });

      await t.restart();
      expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({
        type: "pkcs11",
        initialized: true,
        sealed: false,
      });
      expect((await t.call("GET", "auth/token/lookup-self", undefined, root)).statusCode).toBe(200);
    });
  }

  it("a wrong PIN in the seal key URI stops the start with FR_KEY_PIN and never shows the PIN", async () => {
    const token = await softHsmToken("seal-pin");
    const good = token.uri("fleetroot-seal");
    const km = createKeyManager();
    await km.generateWrapper(good, "aes-256");
    await km.close();
    const dir = mkdtempSync(join(tmpdir(), "fr-hsm-"));
    const first = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      seal: { type: "pkcs11", key: good },
      dataDir: dir,
    });
    expect((await first.call("PUT", "sys/init", {})).statusCode).toBe(200);
    await first.close();

    const wrong = good.replace(`pin-value=${token.pin}`, "pin-value=99999999");
    expect(wrong).not.toBe(good);
    const err = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      seal: { type: "pkcs11", key: wrong },
      dataDir: dir,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).code).toBe("FR_KEY_PIN");
    expect((err as FleetError).message).not.toContain("99999999");
  });
});
