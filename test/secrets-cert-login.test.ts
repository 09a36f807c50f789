import { request } from "node:https";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildCertificate, buildCrl, certificateParts, toPem } from "../src/crypto/index.js";
import { type TestChain, buildTestChain, tempDir, testKey } from "../src/crypto/test-helpers.js";
import { ManualClock } from "../src/util/clock.js";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { initAndUnseal, putPolicy } from "./secrets-helpers.js";

const HOUR = 3_600_000;
const pem = (der: Uint8Array) => toPem(der, "CERTIFICATE");

interface Device {
  cert: string;
  key: string;
  serial: Uint8Array;
}

let chain: TestChain;
let serverCert = "";
let serverKey = "";
const devices: Record<string, Device> = {};
let rogue: Device;

/** One CA chain for every block: RSA-free P-256, built with src/crypto. */
beforeAll(async () => {
  chain = await buildTestChain("ecdsa-p256");
  const now = Date.now();
  for (const [name, serial] of [
    ["robot-1", "0a01"],
    ["robot-2", "0a02"],
  ] as const) {
    const k = testKey("ecdsa-p256");
    const der = await chain.issue({
      serial: Buffer.from(serial, "hex"),
      subject: [{ type: "CN", value: name }],
      publicKey: k.signer.publicKey,
      extKeyUsage: ["clientAuth"],
      san: { dns: [`${name}.fleet.example`] },
    });
    devices[name] = {
      cert: pem(der) + pem(chain.int.der),
      key: k.privatePem,
      serial: certificateParts(der).serial,
    };
  }
  // A look-alike robot-1 from a CA nobody trusts.
  const rk = testKey("ecdsa-p256");
  const rogueDer = await buildCertificate(
    {
      serial: 7n,
      subject: [{ type: "CN", value: "robot-1" }],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + HOUR),
      publicKey: rk.signer.publicKey,
      extKeyUsage: ["clientAuth"],
    },
    rk.signer,
  );
  rogue = { cert: pem(rogueDer), key: rk.privatePem, serial: new Uint8Array([7]) };
  const sk = testKey("ecdsa-p256");
  serverCert = pem(
    await buildCertificate(
      {
        serial: 9n,
        subject: [{ type: "CN", value: "fleetroot test server" }],
        notBefore: new Date(now - HOUR),
        notAfter: new Date(now + HOUR),
        publicKey: sk.signer.publicKey,
        extKeyUsage: ["serverAuth"],
        san: { ip: ["127.0.0.1"] },
      },
      sk.signer,
    ),
  );
  serverKey = sk.privatePem;
});

describeEachStore("secrets: certificate login over mutual TLS", (db) => {
  let t: TestServer;
  let root = "";
  let url = "";
  const dir = tempDir("fr-cert-login-");

  beforeAll(async () => {
    t = await startTestServer(db.url(), {
      clock: new ManualClock(Date.now()),
      defaults: {
        tls: {
          cert_file: dir.write("server.pem", serverCert),
          key_file: dir.write("server.key", serverKey),
          client_ca_file: dir.write("clients.pem", pem(chain.root.der)),
        },
      },
    });
    ({ root } = await initAndUnseal(t));
    url = await t.server.listen();
    const rolePolicy = (name: string) =>
      `path "secret/data/robots/${name}/*" { capabilities = ["read", "create", "update"] }`;
    for (const name of ["robot-1", "robot-2"]) {
      await putPolicy(t, root, name, rolePolicy(name));
      const r = await t.call(
        "POST",
        `auth/cert/certs/${name}`,
        {
          certificate: pem(chain.root.der),
          allowed_common_names: [name],
          allowed_dns_sans: ["*.fleet.example"],
          token_policies: [name],
          token_ttl: "1h",
        },
        root,
      );
      expect(r.statusCode).toBe(204);
      await t.call("POST", `secret/data/robots/${name}/config`, { data: { broker: `mqtt://${name}` } }, root);
    }
  });
  afterAll(async () => {
    await t?.close();
    dir.remove();
  });

  const call = (
    method: string,
    path: string,
    opts: { device?: Device; token?: string; body?: unknown } = {},
    // Response bodies are checked field by field below; typing every Vault shape would add nothing.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ): Promise<{ status: number; json: Record<string, any> }> =>
    new Promise((resolve, reject) => {
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const req = request(
        `${url}/v1/${path}`,
        {
          method,
          ca: serverCert,
          ...(opts.device ? { cert: opts.device.cert, key: opts.device.key } : {}),
          headers: {
            ...(opts.token ? { "x-vault-token": opts.token } : {}),
            ...(payload ? { "content-type": "application/json" } : {}),
          },
          timeout: 10_000,
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });

  it("a device certificate logs in and reads only its own path", async () => {
    const login = await call("POST", "auth/cert/login", { device: devices["robot-1"]!, body: {} });
    expect(login.status).toBe(200);
    const auth = login.json.auth;
    expect(auth.policies).toEqual(["default", "robot-1"]);
    expect(auth.metadata).toMatchObject({
      cert_name: "robot-1",
      common_name: "robot-1",
      serial_number: "0a01",
    });
    expect(auth.lease_duration).toBe(3600);
    // Vault's login block: an orphan service token without a use limit.
    expect(auth).toMatchObject({ orphan: true, num_uses: 0, token_type: "service", entity_id: "" });
    expect(auth.token_policies).toEqual(auth.policies);
    expect(auth.accessor).toMatch(/\S/);
    const own = await call("GET", "secret/data/robots/robot-1/config", { token: auth.client_token });
    expect(own.status).toBe(200);
    expect(own.json.data.data).toEqual({ broker: "mqtt://robot-1" });
    expect(
      (await call("GET", "secret/data/robots/robot-2/config", { token: auth.client_token })).status,
    ).toBe(403);
    expect((await call("GET", "sys/mounts", { token: auth.client_token })).status).toBe(403);
  });

  it("refuses no certificate, a certificate from another CA, and a role whose rules it does not meet", async () => {
    const none = await call("POST", "auth/cert/login", { body: {} });
    expect(none.status).toBe(400);
    expect(none.json.code).toBe("FR_LOGIN_FAILED");
    const rg = await call("POST", "auth/cert/login", { device: rogue, body: {} });
    expect(rg.status).toBe(400);
    expect(rg.json.errors[0]).toContain("does not chain");
    const wrongRole = await call("POST", "auth/cert/login", {
      device: devices["robot-2"]!,
      body: { name: "robot-1" },
    });
    expect(wrongRole.status).toBe(400);
    expect(wrongRole.json.errors[0]).toContain("common name");
  });

  it("after revocation (CRL from the issuing CA) the certificate cannot log in; others still can", async () => {
    const parts = certificateParts(chain.int.der);
    const now = Date.now();
    const crl = await buildCrl(
      {
        issuerNameDer: parts.subject,
        issuerSki: parts.subjectKeyId ?? Buffer.alloc(0),
        thisUpdate: new Date(now - HOUR),
        nextUpdate: new Date(now + HOUR),
        crlNumber: 1,
        entries: [{ serial: devices["robot-1"]!.serial, revokedAt: new Date(now - 60_000) }],
      },
      chain.int.key.signer,
    );
    const put = await t.call("POST", "auth/cert/crls/fleet", { crl: toPem(crl, "X509 CRL") }, root);
    expect(put.statusCode).toBe(204);
    expect(
      Object.keys((await t.call("GET", "auth/cert/crls/fleet", undefined, root)).json().data.serials),
    ).toEqual(["a01"]);
    const revoked = await call("POST", "auth/cert/login", { device: devices["robot-1"]!, body: {} });
    expect(revoked.status).toBe(400);
    expect(revoked.json.errors[0]).toContain("revoked");
    expect((await call("POST", "auth/cert/login", { device: devices["robot-2"]!, body: {} })).status).toBe(
      200,
    );
    expect((await t.call("GET", "auth/cert/certs?list=true", undefined, root)).json().data.keys).toEqual([
      "robot-1",
      "robot-2",
    ]);
    expect(
      (await t.call("GET", "auth/cert/certs/robot-1", undefined, root)).json().data.token_policies,
    ).toEqual(["robot-1"]);
    const audit = (await import("node:fs")).readFileSync(t.server.core.paths.auditPath, "utf8");
    expect(audit).toContain("auth.cert_login");
    expect(audit).toContain("auth.cert_login_refused");
  });

  it("refuses roles without a CA, granting root, or with token_ttl above token_max_ttl", async () => {
    const ttls = { certificate: pem(chain.root.der), token_ttl: "2h", token_max_ttl: "1h" };
    const overMax = await t.call("POST", "auth/cert/certs/ttl-role", ttls, root);
    expect(overMax.statusCode).toBe(400);
    expect(overMax.json().errors[0]).toMatch(/token_ttl.*cannot be greater than.*token_max_ttl/);
    expect((await t.call("GET", "auth/cert/certs/ttl-role", undefined, root)).statusCode).toBe(404);
    expect((await t.call("POST", "auth/cert/certs/bad", { token_policies: ["x"] }, root)).statusCode).toBe(
      400,
    );
    expect(
      (
        await t.call(
          "POST",
          "auth/cert/certs/bad",
          { certificate: pem(chain.root.der), token_policies: ["root"] },
          root,
        )
      ).statusCode,
    ).toBe(400);
    expect(
      (
        await t.call(
          "POST",
          "auth/cert/certs/bad",
          { certificate: "-----BEGIN CERTIFICATE-----\nzz\n-----END CERTIFICATE-----" },
          root,
        )
      ).statusCode,
    ).toBe(400);
  });
});
