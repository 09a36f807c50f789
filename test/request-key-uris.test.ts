import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";
import { softHsmToken, type SoftHsmToken } from "./helpers/softhsm.js";

/**
 * Key URIs in API requests (pki key_ref, the ROS 2 CA keys, TUF key uris) name files the server writes or
 * opens and PKCS#11 modules it loads into its own process. A relative file: path would land wherever the
 * server happens to run; an absolute one must lie under keys.file_dirs (default <data_dir>/keys) and a
 * module-path must be one of keys.pkcs11_modules (default SoftHSM2). Every route that takes one refuses the
 * rest before anything is generated, stored or loaded.
 */

/** The server's environment names the same default module as the test tokens use. */
const serverEnv = (): NodeJS.ProcessEnv =>
  process.env.FLEETROOT_PKCS11_MODULE ? { FLEETROOT_PKCS11_MODULE: process.env.FLEETROOT_PKCS11_MODULE } : {};

async function devServer(dataDir: string, keys?: Record<string, unknown>): Promise<Server> {
  return createServer({
    dev: true,
    env: serverEnv(),
    defaults: { data_dir: dataDir, listen: "127.0.0.1:0", ...(keys ? { keys } : {}) },
  });
}

function caller(server: () => Server) {
  const headers = () => ({ "x-vault-token": server().devRootToken! });
  return {
    post: (url: string, body: unknown) =>
      server().app.inject({
        method: "POST",
        url,
        headers: { ...headers(), "content-type": "application/json" },
        payload: JSON.stringify(body),
      }),
    get: (url: string) => server().app.inject({ method: "GET", url, headers: headers() }),
  };
}

type Call = ReturnType<typeof caller>;

/** The same key URI sent to each route that takes one: pki (root and intermediate), updates init, ros2 config. */
async function sendEverywhere(c: Call, uri: string, repo: string) {
  const tuf = (k: string) => [{ uri: k, generate: "ed25519" }];
  return {
    root: await c.post("/v1/pki/root/generate/internal", { common_name: "Req CA", key_ref: uri }),
    intermediate: await c.post("/v1/pki/intermediate/generate/internal", {
      common_name: "Req Int",
      key_ref: uri,
    }),
    updates: await c.post(`/v1/updates/${repo}/init`, {
      keys: { root: tuf(uri), targets: tuf(uri), snapshot: tuf(uri), timestamp: tuf(uri) },
    }),
    ros2: await c.post("/v1/ros2/config", { identity_ca_key: uri }),
  };
}

/** Each answer is 400 FR_KEY_URI whose message matches `message`; nothing was stored. */
async function expectRefusedEverywhere(
  c: Call,
  answers: Record<string, LightMyRequestResponse>,
  message: RegExp,
  repo: string,
) {
  const field = { root: "key_ref", intermediate: "key_ref", updates: "uri", ros2: "identity_ca_key" };
  for (const [route, r] of Object.entries(answers)) {
    expect(r.statusCode, `${route}: ${r.body}`).toBe(400);
    expect(r.json(), route).toMatchObject({ code: "FR_KEY_URI" });
    const text = (r.json() as { errors: string[] }).errors.join(" ");
    expect(text, route).toContain(`${field[route as keyof typeof field]} "`);
    expect(text, route).toMatch(message);
  }
  expect((await c.get(`/v1/updates/${repo}/status`)).statusCode).toBe(404);
  expect((await c.get("/v1/ros2/config")).json().code).toBe("FR_ROS2_FLEET_NOT_CONFIGURED");
  const issuers = await c.get("/v1/pki/issuers?list=true");
  expect(issuers.statusCode, issuers.body).toBe(200);
  expect(issuers.json().data.keys).toEqual([]);
}

describe("key URIs in requests", () => {
  let server: Server;
  let dataDir = "";
  let outside = "";
  let token: SoftHsmToken;
  const c = caller(() => server);
  const rel = `fr-rel-${process.pid}-${Date.now()}`;
  const relFile = (name: string) => resolve(process.cwd(), rel, name);
  const outsideUri = (name: string) => `file:${join(outside, name)}`;

  beforeAll(async () => {
    // Tokens first: SoftHSM2 reads its token directory once, at the first C_Initialize.
    token = await softHsmToken("request-uris");
    const base = mkdtempSync(join(tmpdir(), "fr-key-uris-"));
    dataDir = join(base, "data");
    outside = join(base, "outside");
    mkdirSync(outside);
    server = await devServer(dataDir);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  describe("a relative file: key URI is refused (FR_KEY_URI, 400), nothing made", () => {
    it("pki root and intermediate key_ref", async () => {
      for (const url of ["/v1/pki/root/generate/internal", "/v1/pki/intermediate/generate/internal"]) {
        const r = await c.post(url, { common_name: "Rel CA", key_ref: `file:${rel}/ca.key` });
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
      const r = await c.post("/v1/updates/relrepo/init", {
        keys: { root: k("root"), targets: k("targets"), snapshot: k("snapshot"), timestamp: k("timestamp") },
      });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().code).toBe("FR_KEY_URI");
      expect(existsSync(relFile("root.key"))).toBe(false);
      expect((await c.get("/v1/updates/relrepo/status")).statusCode).toBe(404);
    });

    it("ros2 config CA keys", async () => {
      const r = await c.post("/v1/ros2/config", { identity_ca_key: `file:${rel}/identity.key` });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json()).toMatchObject({
        code: "FR_KEY_URI",
        errors: [expect.stringMatching(/identity_ca_key/)],
      });
      expect(existsSync(relFile("identity.key"))).toBe(false);
      expect((await c.get("/v1/ros2/config")).json().code).toBe("FR_ROS2_FLEET_NOT_CONFIGURED");
    });
  });

  it("an absolute file: path outside keys.file_dirs is refused on every route, nothing made", async () => {
    const answers = await sendEverywhere(c, outsideUri("ca.key"), "outrepo");
    await expectRefusedEverywhere(
      c,
      answers,
      /names .*outside.*ca\.key, which is outside the allowed directories \(keys named in requests must be under .*data\/keys\); .*add the directory to keys\.file_dirs in the server configuration/,
      "outrepo",
    );
    expect(readdirSync(outside)).toEqual([]);
    const perm = await c.post("/v1/ros2/config", { permissions_ca_key: outsideUri("perm.key") });
    expect(perm.statusCode, perm.body).toBe(400);
    expect(perm.json().errors[0]).toContain('permissions_ca_key "');
    expect(readdirSync(outside)).toEqual([]);
  });

  it("a path that leaves keys/ through .. or a symbolic link is refused on every route, nothing made", async () => {
    const keysDir = join(dataDir, "keys");
    mkdirSync(keysDir, { recursive: true });
    const dotdot = await sendEverywhere(c, `file:${keysDir}/../../outside/dotdot.key`, "dotrepo");
    await expectRefusedEverywhere(c, dotdot, /outside the allowed directories/, "dotrepo");
    symlinkSync(outside, join(keysDir, "out"));
    const link = await sendEverywhere(c, `file:${keysDir}/out/linked.key`, "linkrepo");
    await expectRefusedEverywhere(c, link, /\(through a symbolic link\).*keys\.file_dirs/, "linkrepo");
    expect(readdirSync(outside)).toEqual([]);
  });

  it("a module-path outside keys.pkcs11_modules is refused on every route before the module is loaded", async () => {
    // Not a library: had the server tried to load it, the answer would be FR_KEY_TOKEN "cannot load" (the
    // server below that allows it shows that), not FR_KEY_URI.
    const notLibrary = join(outside, "libnot-pkcs11.so");
    writeFileSync(notLibrary, "#!/bin/sh\necho this is not a PKCS#11 module\n");
    const uri = `pkcs11:token=${token.label};object=k?module-path=${notLibrary}&pin-value=s3cr3tpin`;
    const answers = await sendEverywhere(c, uri, "modrepo");
    await expectRefusedEverywhere(
      c,
      answers,
      new RegExp(
        `names the PKCS#11 module ${notLibrary}, which the server does not load for keys named in requests ` +
          `\\(allowed: /usr/lib/softhsm/libsofthsm2\\.so.*\\); add it to keys\\.pkcs11_modules in the server configuration`,
      ),
      "modrepo",
    );
    for (const r of Object.values(answers)) expect(r.body).not.toContain("s3cr3tpin");
  });

  it("a pin-source outside keys.file_dirs is refused on every route before the file is read", async () => {
    // The token's real PIN sits in the file: a refusal cannot come from a wrong PIN.
    // Beside `outside`, which the next test expects to hold nothing new.
    const pins = join(outside, "..", "pins");
    mkdirSync(pins);
    const pinFile = join(pins, "hsm-pin");
    writeFileSync(pinFile, `${token.pin}\n`);
    const uri = `pkcs11:token=${token.label};object=pin-outside?pin-source=${pinFile}`;
    await expectRefusedEverywhere(
      c,
      await sendEverywhere(c, uri, "pinrepo"),
      new RegExp(`names the PIN file ${pinFile}, which is outside the allowed directories.*keys\\.file_dirs`),
      "pinrepo",
    );
    // The same PIN file under <data_dir>/keys is read and the key made in the token (an issuer, which the
    // next test does not mind).
    mkdirSync(join(dataDir, "keys"), { recursive: true });
    const inside = join(dataDir, "keys", "hsm-pin");
    writeFileSync(inside, `${token.pin}\n`);
    const ok = await c.post("/v1/pki/root/generate/internal", {
      common_name: "PIN-file Root",
      key_ref: `pkcs11:token=${token.label};object=pin-inside?pin-source=${inside}`,
    });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it("keys under <data_dir>/keys and in the default SoftHSM2 module are made", async () => {
    const keyFile = join(dataDir, "keys", "sub", "root.key");
    const root = await c.post("/v1/pki/root/generate/internal", {
      common_name: "Allowed Root",
      key_ref: `file:${keyFile}`,
    });
    expect(root.statusCode, root.body).toBe(200);
    expect(existsSync(keyFile)).toBe(true);

    // The delegated OCSP signer's key_ref is checked too.
    const ocsp = await c.post(`/v1/pki/issuer/${root.json().data.issuer_id}/ocsp-signer`, {
      key_ref: outsideUri("ocsp.key"),
    });
    expect(ocsp.statusCode, ocsp.body).toBe(400);
    expect(ocsp.json().code).toBe("FR_KEY_URI");
    expect(existsSync(join(outside, "ocsp.key"))).toBe(false);

    // token.uri() names the SoftHSM2 module in module-path: allowed by default.
    const hsm = await c.post("/v1/pki/root/generate/internal", {
      common_name: "HSM Root",
      key_ref: token.uri("req-root"),
    });
    expect(hsm.statusCode, hsm.body).toBe(200);

    const k = (name: string) => [
      { uri: `file:${join(dataDir, "keys", `${name}.key`)}`, generate: "ed25519" },
    ];
    const init = await c.post("/v1/updates/okrepo/init", {
      keys: { root: k("root"), targets: k("t"), snapshot: k("s"), timestamp: k("ts") },
    });
    expect(init.statusCode, init.body).toBe(200);

    const ros2 = await c.post("/v1/ros2/config", {
      identity_ca_key: token.uri("ros2-identity"),
      permissions_ca_key: `file:${join(dataDir, "keys", "permissions.key")}`,
    });
    expect(ros2.statusCode, ros2.body).toBe(200);
    expect(existsSync(join(dataDir, "keys", "permissions.key"))).toBe(true);
    expect(readdirSync(outside).sort()).toEqual(["libnot-pkcs11.so"]);
  });
});

describe("keys.file_dirs and keys.pkcs11_modules set in the configuration replace the defaults", () => {
  let server: Server;
  let dataDir = "";
  let allowed = "";
  let notLibrary = "";
  const c = caller(() => server);

  beforeAll(async () => {
    const base = mkdtempSync(join(tmpdir(), "fr-key-uris-cfg-"));
    dataDir = join(base, "data");
    allowed = join(base, "ca-keys");
    notLibrary = join(base, "libnot-pkcs11.so");
    writeFileSync(notLibrary, "not a shared object\n");
    server = await devServer(dataDir, { file_dirs: [allowed], pkcs11_modules: [notLibrary] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a file: key in a configured directory is made; <data_dir>/keys is no longer allowed", async () => {
    const ok = await c.post("/v1/pki/root/generate/internal", {
      common_name: "Configured Root",
      key_ref: `file:${join(allowed, "root.key")}`,
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(existsSync(join(allowed, "root.key"))).toBe(true);
    const def = await c.post("/v1/pki/root/generate/internal", {
      common_name: "Default Root",
      key_ref: `file:${join(dataDir, "keys", "root.key")}`,
    });
    expect(def.statusCode, def.body).toBe(400);
    expect(def.json().errors[0]).toContain(`must be under ${allowed})`);
    expect(existsSync(join(dataDir, "keys"))).toBe(false);
  });

  it("a module-path in keys.pkcs11_modules is loaded (so the refusal above came before any load)", async () => {
    const r = await c.post("/v1/pki/root/generate/internal", {
      common_name: "Module Root",
      key_ref: `pkcs11:token=t;object=k?module-path=${notLibrary}&pin-value=1234`,
    });
    expect(r.json().code, r.body).toBe("FR_KEY_TOKEN");
    expect(r.json().errors[0]).toContain(`cannot load PKCS#11 module ${notLibrary}`);
    // SoftHSM2 is not in this server's list any more.
    const softhsm = await c.post("/v1/pki/root/generate/internal", {
      common_name: "SoftHSM Root",
      key_ref: "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
    });
    expect(softhsm.statusCode, softhsm.body).toBe(400);
    expect(softhsm.json().code).toBe("FR_KEY_URI");
  });
});
