import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";

/**
 * Key URIs in API requests: a relative file: path would land wherever the server happens to run, so every
 * route that takes one refuses it before anything is generated or stored.
 */
describe("a relative file: key URI in a request is refused (FR_KEY_URI, 400), nothing made", () => {
  let server: Server;
  let token = "";
  const rel = `fr-rel-${process.pid}-${Date.now()}`;
  const relFile = (name: string) => resolve(process.cwd(), rel, name);

  beforeAll(async () => {
    server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: mkdtempSync(join(tmpdir(), "fr-key-uris-")), listen: "127.0.0.1:0" },
    });
    token = server.devRootToken!;
  });
  afterAll(async () => {
    await server?.close();
  });

  const post = (url: string, body: unknown) =>
    server.app.inject({
      method: "POST",
      url,
      headers: { "x-vault-token": token, "content-type": "application/json" },
      payload: JSON.stringify(body),
    });

  it("pki root and intermediate key_ref", async () => {
    for (const url of ["/v1/pki/root/generate/internal", "/v1/pki/intermediate/generate/internal"]) {
      const r = await post(url, { common_name: "Rel CA", key_ref: `file:${rel}/ca.key` });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json()).toMatchObject({
        code: "FR_KEY_URI",
        errors: [expect.stringMatching(/key_ref .* relative/)],
      });
    }
    expect(existsSync(relFile("ca.key"))).toBe(false);
  });

  it("updates init key uri", async () => {
    const k = (name: string) => [{ uri: `file:${rel}/${name}.key`, generate: "ed25519" }];
    const r = await post("/v1/updates/relrepo/init", {
      keys: { root: k("root"), targets: k("targets"), snapshot: k("snapshot"), timestamp: k("timestamp") },
    });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json().code).toBe("FR_KEY_URI");
    expect(existsSync(relFile("root.key"))).toBe(false);
    const status = await server.app.inject({
      method: "GET",
      url: "/v1/updates/relrepo/status",
      headers: { "x-vault-token": token },
    });
    expect(status.statusCode, status.body).toBe(404);
  });

  it("ros2 config CA keys", async () => {
    const r = await post("/v1/ros2/config", { identity_ca_key: `file:${rel}/identity.key` });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json()).toMatchObject({
      code: "FR_KEY_URI",
      errors: [expect.stringMatching(/identity_ca_key/)],
    });
    expect(existsSync(relFile("identity.key"))).toBe(false);
    const cfg = await server.app.inject({
      method: "GET",
      url: "/v1/ros2/config",
      headers: { "x-vault-token": token },
    });
    expect(cfg.json().code).toBe("FR_ROS2_FLEET_NOT_CONFIGURED");
  });
});
