import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFleetError } from "../errors/index.js";
import {
  type OcspCertStatus,
  type OcspRequest,
  buildOcspResponse,
  certificateParts,
  encodeSingleResponse,
  keyHash,
  ocspErrorResponse,
  parseOcspRequest,
  toPem,
} from "./index.js";
import { type TestChain, type TestKey, buildTestChain, runPeer, tempDir, testKey } from "./test-helpers.js";

const dir = tempDir("fleetroot-ocsp-");
afterAll(() => dir.remove());

const HOUR = 3_600_000;
let chain: TestChain;
const f = { int: "", cas: "", leaf: "", req: "" };
let request: OcspRequest;

beforeAll(async () => {
  chain = await buildTestChain("ecdsa-p256");
  const pem = (d: Uint8Array) => toPem(d, "CERTIFICATE");
  f.int = dir.write("int.pem", pem(chain.int.der));
  f.cas = dir.write("cas.pem", pem(chain.int.der) + pem(chain.root.der));
  f.leaf = dir.write("leaf.pem", pem(chain.leaf.der));
  f.req = join(dir.path, "req.der");
  const r = runPeer("openssl", ["ocsp", "-issuer", f.int, "-cert", f.leaf, "-reqout", f.req]);
  expect(r.status).toBe(0);
  request = parseOcspRequest(readFileSync(f.req));
});

async function respond(
  status: OcspCertStatus,
  opts: { signer?: TestKey; certs?: Uint8Array[]; nonce?: Uint8Array } = {},
) {
  const now = Date.now();
  const id = request.certIds[0];
  if (!id) throw new Error("request has no CertID");
  const der = await buildOcspResponse(
    {
      producedAt: new Date(now),
      responses: [
        { certId: id, status, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + HOUR) },
      ],
      nonce: opts.nonce ?? request.nonce,
      ...(opts.certs ? { certs: opts.certs } : {}),
    },
    (opts.signer ?? chain.int.key).signer,
  );
  return dir.write(`resp-${Math.random().toString(36).slice(2)}.der`, der);
}

/** Status as openssl reads it for the leaf (a fresh request without nonce, so only status is checked). */
function statusOf(resp: string, extra: string[] = []) {
  return runPeer("openssl", [
    "ocsp",
    "-respin",
    resp,
    "-issuer",
    f.int,
    "-cert",
    f.leaf,
    "-no_nonce",
    "-CAfile",
    f.cas,
    ...extra,
  ]);
}

describe("OCSP", () => {
  it("parses an openssl request: CertID fields and nonce", () => {
    const id = request.certIds[0];
    const parts = certificateParts(chain.int.der);
    expect(id?.hashAlgorithm).toBe("sha1");
    expect(id?.serialHex).toBe("c0ffee");
    expect(Buffer.from(id?.issuerNameHash ?? [])).toEqual(createHash("sha1").update(parts.subject).digest());
    expect(Buffer.from(id?.issuerKeyHash ?? [])).toEqual(keyHash(parts.spki));
    // openssl wraps the nonce in an OCTET STRING inside extnValue (RFC 8954)
    expect(request.nonce?.[0]).toBe(0x04);
    expect(request.signed).toBe(false);
  });

  it("parses SHA-256 CertIDs and several certificates in one request", () => {
    const file = join(dir.path, "req256.der");
    const good = dir.write("root.pem", toPem(chain.root.der, "CERTIFICATE"));
    expect(
      runPeer("openssl", [
        "ocsp",
        "-sha256",
        "-issuer",
        f.int,
        "-cert",
        f.leaf,
        "-cert",
        good,
        "-no_nonce",
        "-reqout",
        file,
      ]).status,
    ).toBe(0);
    const req = parseOcspRequest(readFileSync(file));
    expect(req.certIds.map((c) => [c.hashAlgorithm, c.serialHex])).toEqual([
      ["sha256", "c0ffee"],
      ["sha256", "01"],
    ]);
    expect(req.nonce).toBeUndefined();
  });

  it("answers good, verified by openssl, with the nonce echoed", async () => {
    const resp = await respond("good");
    const r = statusOf(resp);
    expect(r.output).toContain("Response verify OK");
    expect(r.stdout).toMatch(/leaf\.pem: good\n\s+This Update:/);
    expect(r.status).toBe(0);
    // With the original request, openssl checks that the response echoes its nonce.
    const withNonce = runPeer("openssl", [
      "ocsp",
      "-respin",
      resp,
      "-reqin",
      f.req,
      "-issuer",
      f.int,
      "-CAfile",
      f.cas,
      "-resp_text",
    ]);
    expect(withNonce.output).toContain("Response verify OK");
    expect(withNonce.output).not.toContain("Nonce Verify error");
    expect(withNonce.stdout).toContain(
      `OCSP Nonce: \n            ${Buffer.from(request.nonce ?? [])
        .toString("hex")
        .toUpperCase()}`,
    );
  });

  it("a response with a different nonce is caught by openssl (the echo check is real)", async () => {
    const resp = await respond("good", { nonce: Buffer.from("0410" + "ab".repeat(16), "hex") });
    const r = runPeer("openssl", [
      "ocsp",
      "-respin",
      resp,
      "-reqin",
      f.req,
      "-issuer",
      f.int,
      "-CAfile",
      f.cas,
    ]);
    expect(r.output).toContain("Nonce Verify error");
  });

  it("answers revoked with time and reason", async () => {
    const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * HOUR);
    const resp = await respond(
      { revoked: { time: revokedAt, reason: "keyCompromise" } },
      { certs: [chain.int.der] },
    );
    const r = statusOf(resp, ["-VAfile", f.int]);
    expect(r.output).toContain("Response verify OK");
    expect(r.stdout).toContain("leaf.pem: revoked");
    expect(r.stdout).toContain("Reason: keyCompromise");
    const shown = /Revocation Time: (.*)/.exec(r.stdout)?.[1];
    expect(new Date(shown ?? "").getTime()).toBe(revokedAt.getTime());
  });

  it("answers unknown", async () => {
    const r = statusOf(await respond("unknown"));
    expect(r.output).toContain("Response verify OK");
    expect(r.stdout).toContain("leaf.pem: unknown");
  });

  it("a delegated responder certificate (ocspSigning, ocsp-nocheck) signs responses openssl accepts", async () => {
    const responder = testKey("ecdsa-p256");
    const cert = await chain.issue({
      serial: 0x0c5fn,
      subject: [{ type: "CN", value: "OCSP responder" }],
      publicKey: responder.signer.publicKey,
      extKeyUsage: ["ocspSigning"],
      ocspNoCheck: true,
    });
    const r = statusOf(await respond("good", { signer: responder, certs: [cert] }));
    expect(r.output).toContain("Response verify OK");
    expect(r.stdout).toContain("leaf.pem: good");
  });

  it("a response signed by an unrelated key fails verification", async () => {
    const r = statusOf(await respond("good", { signer: testKey("ecdsa-p256") }));
    expect(r.output).not.toContain("Response verify OK");
    expect(r.output).toMatch(/Response Verify Failure|signer certificate not found/);
  });

  it("pre-encoded single responses give the same bytes", () => {
    const id = request.certIds[0];
    if (!id) throw new Error("no CertID");
    const t = new Date(Date.UTC(2026, 0, 1));
    const a = encodeSingleResponse({ certId: id, status: "good", thisUpdate: t });
    expect(a.subarray(-19).toString("hex")).toBe("8000180f" + Buffer.from("20260101000000Z").toString("hex"));
  });

  it("error responses carry only the status", () => {
    const file = dir.write("err.der", ocspErrorResponse("tryLater"));
    expect(ocspErrorResponse("malformedRequest").toString("hex")).toBe("30030a0101");
    expect(ocspErrorResponse("unauthorized").toString("hex")).toBe("30030a0106");
    expect(ocspErrorResponse("internalError").toString("hex")).toBe("30030a0102");
    const r = runPeer("openssl", ["ocsp", "-respin", file, "-resp_text", "-noverify"]);
    expect(r.output).toContain("Responder Error: trylater (3)");
  });

  it("refuses malformed requests with FR_OCSP_REQUEST_INVALID", () => {
    const valid = readFileSync(f.req);
    const cases = [
      Buffer.from("garbage"),
      valid.subarray(0, valid.length - 5),
      Buffer.concat([valid, Buffer.from([0])]),
      Buffer.from([0x30, 0x80, 0x00, 0x00]),
      Buffer.alloc(20_000, 0x30),
      Buffer.from("3000", "hex"),
    ];
    for (const c of cases) {
      let err: unknown;
      try {
        parseOcspRequest(c);
      } catch (e) {
        err = e;
      }
      expect(isFleetError(err) && err.code).toBe("FR_OCSP_REQUEST_INVALID");
    }
  });
});
