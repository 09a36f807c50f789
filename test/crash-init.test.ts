import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestServer } from "./helpers/server.js";

/**
 * An init that dies after it made its root token (a kill -9 there, or any later failure) leaves that token's
 * row sealed under a keyring that was never stored. The next, successful init must not carry it along.
 */
describe("init after an init that was cut short", () => {
  it("leaves only the new root token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-crash-init-"));
    const t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, { dataDir: dir });
    try {
      const tokens = t.server.core.tokens;
      const original = tokens.createRootToken.bind(tokens);
      // Stands in for the process dying after the root token row was written, before the keyring commit.
      tokens.createRootToken = async () => {
        await original();
        throw new Error("killed after the root token was stored");
      };
      const failed = await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 });
      expect(failed.statusCode).toBe(500);
      tokens.createRootToken = original;

      const init = await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 });
      expect(init.statusCode).toBe(200);
      const { keys, root_token: root } = init.json() as { keys: string[]; root_token: string };
      expect((await t.call("PUT", "sys/unseal", { key: keys[0] })).json().sealed).toBe(false);
      const accessors = await t.call("GET", "auth/token/accessors?list=true", undefined, root);
      expect(accessors.statusCode).toBe(200);
      expect((accessors.json() as { data: { keys: string[] } }).data.keys).toHaveLength(1);
    } finally {
      await t.close();
    }
  }, 30_000);
});
