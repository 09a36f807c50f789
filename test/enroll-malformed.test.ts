import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildDeviceCsr, generateSoftwareKey } from "../src/agent/enroll-crypto.js";
import { cborHead } from "../src/enroll/index.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";

/** A COSE_Sign1 with the given parts, hand-encoded so each part can be broken on purpose. */
function cose(parts: Buffer[], tag = true): Buffer {
  return Buffer.concat([tag ? Buffer.from([0xd2]) : Buffer.alloc(0), Buffer.from([0x84]), ...parts]);
}
const bstr = (b: Buffer) => Buffer.concat([cborHead(2, b.length), b]);
const tstr = (s: string) => Buffer.concat([cborHead(3, Buffer.byteLength(s)), Buffer.from(s)]);
const protectedEs256 = bstr(Buffer.from([0xa1, 0x01, 0x26]));

describe("malformed enrollment input: clear 400s, nothing recorded but the audit entry", () => {
  let f: Fleet;
  let csr = "";
  beforeAll(async () => {
    f = await startFleet();
    const k = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await f.api("POST", "fleet/provisioners/psa", {
      type: "psa",
      role: "device",
      reference_values: [{ measurement_value: "aa".repeat(32) }],
    });
    await f.api("POST", "fleet/provisioners/psa/attestation-keys", {
      instance_id: "01" + "11".repeat(32),
      device_id: "psa-x",
      public_key: k.publicKey.export({ format: "pem", type: "spki" }).toString(),
    });
    // An x509 provisioner names registered manufacturer CAs; any CA certificate will do for malformed chains.
    const anyCa = (await f.t.call("GET", "pki/ca/pem")).body;
    expect((await f.api("POST", "fleet/manufacturers/none", { certificate: anyCa })).status).toBe(200);
    const idev = await f.api("POST", "fleet/provisioners/idev", {
      type: "x509",
      role: "device",
      manufacturers: ["none"],
    });
    expect(idev.status, JSON.stringify(idev)).toBe(200);
    csr = await buildDeviceCsr(generateSoftwareKey("ecdsa-p256").signer);
  });
  afterAll(async () => f?.close());

  // Every refused request counts against the client's failure budget (20 a minute): start each test fresh.
  beforeEach(() => f.clock.advance(61_000));
  const nonce = async () => ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
  const counts = async () => {
    const db = f.t.server.core.store.db as unknown as {
      selectFrom(t: string): { select(e: unknown): { executeTakeFirstOrThrow(): Promise<{ n: number }> } };
    };
    const { sql } = await import("kysely");
    const n = async (t: string) =>
      Number(
        (
          await db
            .selectFrom(t)
            .select(sql<number>`count(*)`.as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      devices: await n("fleet_device"),
      certs: await n("fleet_device_cert"),
      pki: await n("pki_cert"),
    };
  };

  it("refuses malformed CBOR/COSE tokens with 400 and leaves the nonce and registry untouched", async () => {
    const before = await counts();
    const n = await nonce();
    const valid = cose([
      protectedEs256,
      Buffer.from([0xa0]),
      bstr(Buffer.from([0xa0])),
      bstr(Buffer.alloc(64)),
    ]);
    let nested = Buffer.from([0x01]);
    for (let i = 0; i < 200; i++) nested = Buffer.concat([Buffer.from([0x81]), nested]);
    const cases: Record<string, Buffer> = {
      truncated: valid.subarray(0, valid.length - 10),
      "trailing bytes": Buffer.concat([valid, Buffer.from([0x00])]),
      "wrong type (array of text)": cose([tstr("hdr"), Buffer.from([0xa0]), tstr("payload"), tstr("sig")]),
      "not an array": Buffer.from([0xa0]),
      "unprotected algorithm": cose([
        bstr(Buffer.alloc(0)),
        Buffer.from([0xa1, 0x01, 0x26]),
        bstr(Buffer.from([0xa0])),
        bstr(Buffer.alloc(64)),
      ]),
      "claims not a map": cose([
        protectedEs256,
        Buffer.from([0xa0]),
        bstr(Buffer.from([0x01])),
        bstr(Buffer.alloc(64)),
      ]),
      "claims without nonce": valid,
      oversized: Buffer.concat([Buffer.from([0x5a, 0x00, 0x00, 0x27, 0x10]), Buffer.alloc(10_000)]),
      "deeply nested": nested,
      "indefinite length": Buffer.from([0x9f, 0x01, 0xff]),
      "string-reference tag": Buffer.from([0xd8, 0x19, 0x00]),
      "length past the end": Buffer.from([0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      "huge map count": Buffer.from([0xbb, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff]),
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await f.t.call("POST", "fleet/enroll", {
        provisioner: "psa",
        csr,
        nonce: n,
        attestation_token: token.toString("base64"),
      });
      expect(r.statusCode, `${name}: ${r.body}`).toBe(400);
      expect(r.json().code, name).toBe("FR_ENROLL_MALFORMED");
      expect(r.json().errors[0], name).toMatch(/attestation|CBOR|COSE/i);
    }
    const notBase64 = await f.t.call("POST", "fleet/enroll", {
      provisioner: "psa",
      csr,
      nonce: n,
      attestation_token: "%%%",
    });
    expect(notBase64.statusCode).toBe(400);
    expect(await counts()).toEqual(before);

    // The nonce was never consumed by the refused requests: nothing was recorded.
    const store = f.t.server.core.store.db as unknown as {
      selectFrom(t: string): { selectAll(): { execute(): Promise<unknown[]> } };
    };
    expect((await store.selectFrom("fleet_nonce").selectAll().execute()).length).toBeGreaterThanOrEqual(1);

    // ...but every refused request is in the audit log.
    const audit = readFileSync(join(f.dir, "audit.log"), "utf8")
      .split("\n")
      .filter(
        (l) =>
          l.includes('"path":"fleet/enroll"') &&
          l.includes('"type":"response"') &&
          l.includes('"status":400'),
      );
    expect(audit.length).toBeGreaterThanOrEqual(Object.keys(cases).length);
  });

  it("refuses malformed chains with 400", async () => {
    const n = await nonce();
    const bad: Record<string, unknown> = {
      "not PEM": "hello",
      "bad base64": "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
      "not a certificate": "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----",
      "too many": Array(10)
        .fill("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----")
        .join("\n"),
      "wrong type": 42,
    };
    for (const [name, chain] of Object.entries(bad)) {
      const r = await f.t.call("POST", "fleet/enroll", {
        provisioner: "idev",
        csr,
        nonce: n,
        chain,
        signature: "AAAA",
      });
      expect(r.statusCode, `${name}: ${r.body}`).toBe(400);
      expect(["FR_ENROLL_MALFORMED", "FR_PEM_INVALID", "FR_DER_INVALID"], name).toContain(r.json().code);
    }
  });

  it("refuses garbage nonces with 400, and names an unknown provisioner", async () => {
    for (const garbage of ["", "abc", "A".repeat(43) + "=", 12, null, "é".repeat(43)]) {
      const r = await f.t.call("POST", "fleet/enroll", {
        provisioner: "psa",
        csr,
        nonce: garbage,
        attestation_token: "AAAA",
      });
      expect(r.statusCode, String(garbage)).toBe(400);
      expect(r.json().code).toBe("FR_ENROLL_NONCE");
    }
    const unknown = Buffer.alloc(32, 7).toString("base64url");
    const k = generateSoftwareKey("ecdsa-p256");
    const r = await f.t.call("POST", "fleet/enroll", {
      provisioner: "keys-none",
      csr: await buildDeviceCsr(k.signer),
      nonce: unknown,
    });
    expect(r.statusCode).toBe(404); // unknown provisioner named clearly
    expect(r.json().code).toBe("FR_PROVISIONER_NOT_FOUND");
  });

  it("refuses a malformed CSR with 400", async () => {
    for (const bad of [
      "",
      "garbage",
      "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----",
    ]) {
      const r = await f.t.call("POST", "fleet/enroll", { provisioner: "psa", csr: bad });
      expect(r.statusCode, bad).toBe(400);
    }
  });
});
