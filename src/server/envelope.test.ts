import { describe, expect, it } from "vitest";
import { envelopeJson, envelopeObject, topLevelEnvelope } from "./envelope.js";
import type { RouteResult } from "./types.js";

describe("envelopeJson", () => {
  it("writes exactly JSON.stringify of the envelope object", () => {
    const shapes: Extract<RouteResult, { kind: "envelope" }>[] = [
      { kind: "envelope" },
      { kind: "envelope", data: { ok: true } },
      { kind: "envelope", data: { s: 'quote " and \\ and \n', n: 1.5, nested: { a: [1, null, "x"] } } },
      {
        kind: "envelope",
        data: null,
        auth: { client_token: "t", policies: ["a"] },
        leaseDuration: 3600,
        renewable: true,
      },
      { kind: "envelope", warnings: ["w1", "w\u0001"], data: { d: new Date(0) } },
      { kind: "envelope", warnings: [] },
      { kind: "envelope", wrapInfo: { token: "x", ttl: 60 } },
      { kind: "envelope", data: { u: undefined, f: () => 1 } },
      { kind: "envelope", data: "just a string" },
      { kind: "envelope", leaseDuration: Number.NaN, renewable: false },
      {
        kind: "envelope",
        data: 0,
        leaseDuration: -0,
        renewable: false,
        wrapInfo: null,
        auth: null,
        warnings: [],
      },
      { kind: "envelope", data: [1], leaseDuration: 0, auth: { accessor: "a" } },
      { kind: "envelope", data: { ok: true }, wrapInfo: undefined, auth: undefined, warnings: undefined },
    ];
    // A request id is a UUID; one that is not plain JSON text is still written as JSON.stringify would.
    for (const id of ["req-1", "0f8c3c6e-5d1a-4e43-9a51-2b7c1e0d9f00", 'a "quoted\\ id\u2028\u0000', ""]) {
      for (const s of shapes) {
        expect(envelopeJson(s, id)).toBe(JSON.stringify(envelopeObject(s, id)));
      }
    }
  });
});

describe("a handler result that cannot be written as JSON", () => {
  it("is answered 500 FR_INTERNAL, and its response entry is in the audit log", async () => {
    const { mkdtempSync, readFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { createServer } = await import("./main.js");
    const { envelope } = await import("./types.js");
    const dir = mkdtempSync(join(tmpdir(), "fr-envelope-"));
    const server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: dir, listen: "127.0.0.1:0" },
      modules: [
        {
          name: "odd",
          migrations: {},
          routes: () => [
            { method: "GET", url: "/v1/odd/bigint", auth: "none", handler: async () => envelope({ n: 1n }) },
            { method: "GET", url: "/v1/odd/fine", auth: "none", handler: async () => envelope({ n: 1 }) },
          ],
        },
      ],
    });
    try {
      const bad = await server.app.inject({ method: "GET", url: "/v1/odd/bigint" });
      expect(bad.statusCode).toBe(500);
      expect(bad.json().errors).toHaveLength(1);
      const fine = await server.app.inject({ method: "GET", url: "/v1/odd/fine" });
      expect(fine.statusCode).toBe(200);
      expect(fine.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(fine.json()).toMatchObject({ request_id: expect.any(String), data: { n: 1 }, auth: null });
    } finally {
      await server.close();
    }
    const lines = readFileSync(join(dir, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const entry = lines.find((l) => l.type === "response" && l.request?.path === "odd/bigint");
    expect(entry?.response?.status).toBe(500);
  });
});

describe("topLevelEnvelope", () => {
  it("repeats the data at the top level, then Vault's envelope fields in their order", () => {
    const data = { keys: ["default", "root"], policies: ["default", "root"] };
    const out = topLevelEnvelope(data, "req-2");
    expect(Object.keys(out)).toEqual([
      "keys",
      "policies",
      "request_id",
      "lease_id",
      "renewable",
      "lease_duration",
      "data",
      "wrap_info",
      "warnings",
      "auth",
    ]);
    expect(out).toMatchObject({ ...data, request_id: "req-2", data, auth: null, wrap_info: null });
  });
});
