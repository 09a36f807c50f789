import { request } from "node:https";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCertificate, toPem } from "../src/crypto/index.js";
import { tempDir, testKey } from "../src/crypto/test-helpers.js";
import { ManualClock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { initAndUnseal, putPolicy } from "./secrets-helpers.js";

const HOUR = 3_600_000;

/** Certificate login with a device certificate issued by Fleetroot's own PKI; revoked there, it is refused. */
describe("secrets: cert login with a PKI-issued device certificate", () => {
  let t: TestServer;
  let url = "";
  let root = "";
  let serverCert = "";
  const files = tempDir("fr-pki-login-");

  beforeAll(async () => {
    const sk = testKey("ecdsa-p256");
    const now = Date.now();
    serverCert = toPem(
      await buildCertificate(
        {
          serial: 11n,
          subject: [{ type: "CN", value: "fleetroot test server" }],
          notBefore: new Date(now - HOUR),
          notAfter: new Date(now + HOUR),
          publicKey: sk.signer.publicKey,
          extKeyUsage: ["serverAuth"],
          san: { ip: ["127.0.0.1"] },
        },
        sk.signer,
      ),
      "CERTIFICATE",
    );
    const dir = mkdtempSync(join(tmpdir(), "fr-pki-login-data-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      dataDir: dir,
      clock: new ManualClock(Date.now()),
      defaults: {
        tls: {
          cert_file: files.write("server.pem", serverCert),
          key_file: files.write("server.key", sk.privatePem),
          // Client certificates are checked per cert role; this bundle only turns on the request for one.
          client_ca_file: files.write("clients.pem", serverCert),
        },
      },
    });
    ({ root } = await initAndUnseal(t));
    url = await t.server.listen();
  });
  afterAll(async () => {
    await t?.close();
    files.remove();
  });

  const login = (cert: string, key: string): Promise<{ status: number; body: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const req = request(
        `${url}/v1/auth/cert/login`,
        { method: "POST", ca: serverCert, cert, key, headers: { "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });

  it("logs in, reads its own path, and cannot log in once the PKI revokes the certificate", async () => {
    const ca = await t.call(
      "POST",
      "pki/root/generate/internal",
      { common_name: "Fleet Root", ttl: "8760h" },
      root,
    );
    expect(ca.statusCode).toBe(200);
    const caPem = ca.json().data.certificate as string;
    const role = await t.call(
      "POST",
      "pki/roles/robots",
      {
        allowed_domains: "fleet.example",
        allow_subdomains: true,
        client_flag: true,
        server_flag: false,
        key_type: "ec",
        key_bits: 256,
      },
      root,
    );
    expect(role.statusCode).toBeLessThan(300);
    const issued = (
      await t.call("POST", "pki/issue/robots", { common_name: "robot-9.fleet.example", ttl: "1h" }, root)
    ).json().data;
    await putPolicy(t, root, "robot-9", 'path "secret/data/robots/robot-9/*" { capabilities = ["read"] }');
    expect(
      (
        await t.call(
          "POST",
          "auth/cert/certs/robots",
          {
            certificate: caPem,
            allowed_dns_sans: ["*.fleet.example"],
            token_policies: ["robot-9"],
            token_ttl: "1h",
          },
          root,
        )
      ).statusCode,
    ).toBe(204);
    await t.call("POST", "secret/data/robots/robot-9/config", { data: { broker: "mqtts://fleet" } }, root);

    const ok = await login(issued.certificate as string, issued.private_key as string);
    expect(ok.status).toBe(200);
    const token = (ok.body.auth as { client_token: string }).client_token;
    expect((await t.call("GET", "secret/data/robots/robot-9/config", undefined, token)).statusCode).toBe(200);
    expect((await t.call("GET", "secret/data/robots/robot-8/config", undefined, token)).statusCode).toBe(403);

    const revoked = await t.call("POST", "pki/revoke", { serial_number: issued.serial_number }, root);
    expect(revoked.statusCode).toBe(200);
    const refused = await login(issued.certificate as string, issued.private_key as string);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toMatch(/revoked/);
  });
});
