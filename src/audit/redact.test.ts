import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../util/clock.js";
import { AuditLog } from "./log.js";
import { jsonSafe, redactEntry, redactToJson, SEALED_VALUE, TOO_DEEP_VALUE } from "./redact.js";
import { testSigner } from "./test-signer.js";
import type { AuditEntry } from "./types.js";

const key = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
let dir: string;
let log: AuditLog;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-redact-"));
  log = await AuditLog.open({ path: join(dir, "audit.log"), signer: testSigner(), clock: new ManualClock() });
});
afterEach(async () => {
  await log.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("hash", () => {
  it("matches HMAC-SHA256 computed by openssl, in Vault's hmac-sha256:<hex> form", () => {
    log.setHmacKey(key);
    const value = "s.Xk3Rl9 token / ünïcode";
    const out = execFileSync(
      "openssl",
      ["mac", "-digest", "SHA256", "-macopt", `hexkey:${key.toString("hex")}`, "HMAC"],
      {
        input: Buffer.from(value, "utf8"),
      },
    )
      .toString()
      .trim()
      .toLowerCase();
    expect(log.hash(value)).toBe(`hmac-sha256:${out}`);
    expect(log.hash(value)).toBe("hmac-sha256:" + createHmac("sha256", key).update(value).digest("hex"));
  });

  it("is stable across calls and across a reopen with the same key, and differs under another key", async () => {
    log.setHmacKey(key);
    const a = log.hash("root");
    expect(log.hash("root")).toBe(a);
    const again = await AuditLog.open({
      path: join(dir, "other.log"),
      signer: testSigner(),
      clock: new ManualClock(),
    });
    again.setHmacKey(Uint8Array.from(key));
    expect(again.hash("root")).toBe(a);
    again.setHmacKey(randomBytes(32));
    expect(again.hash("root")).not.toBe(a);
    await again.close();
  });

  it("refuses with FR_SEALED while no key is set, and after the key is cleared", () => {
    expect(() => log.hash("x")).toThrow(expect.objectContaining({ code: "FR_SEALED" }));
    log.setHmacKey(key);
    log.setHmacKey(undefined);
    expect(() => log.hash("x")).toThrow(expect.objectContaining({ code: "FR_SEALED" }));
  });

  it("refuses a key too short to be one", () => {
    expect(() => log.setHmacKey(new Uint8Array(4))).toThrow(expect.objectContaining({ code: "FR_INTERNAL" }));
  });
});

describe("redactEntry", () => {
  const h = (v: string) => `H(${v})`;
  const entry: AuditEntry = {
    type: "request",
    request: {
      id: "req-1",
      operation: "update",
      path: "secret/data/app",
      remote_address: "127.0.0.1",
      client_token: "tok",
      client_token_accessor: "acc",
      policy_path: "secret/data/app",
      data: { password: "pw", nested: [{ k: "v" }, 7, true, null], n: 3 },
    },
    auth: { accessor: "acc2", policies: ["default", "ops"], display_name: "token-ops", client_token: "tok2" },
    response: {
      status: 200,
      data: { serial: "01:02", list: ["a", ["b"]] },
      auth: { client_token: "tok3", accessor: "acc3" },
    },
    error: "permission denied",
    event: {
      name: "token.create",
      fields: { ttl: 60, ok: true, who: "ops", accessor: "acc4" },
      data: { secret_id: "sid" },
    },
  };

  it("hashes every sensitive string and leaves ids, paths, operations, statuses, policies and fields plain", () => {
    expect(redactEntry(entry, h)).toEqual({
      type: "request",
      request: {
        id: "req-1",
        operation: "update",
        path: "secret/data/app",
        remote_address: "127.0.0.1",
        client_token: "H(tok)",
        client_token_accessor: "H(acc)",
        policy_path: "secret/data/app",
        data: { password: "H(pw)", nested: [{ k: "H(v)" }, 7, true, null], n: 3 },
      },
      auth: {
        accessor: "H(acc2)",
        policies: ["default", "ops"],
        display_name: "token-ops",
        client_token: "H(tok2)",
      },
      response: {
        status: 200,
        data: { serial: "H(01:02)", list: ["H(a)", ["H(b)"]] },
        auth: { client_token: "H(tok3)", accessor: "H(acc3)" },
      },
      error: "permission denied",
      event: {
        name: "token.create",
        fields: { ttl: 60, ok: true, who: "ops", accessor: "H(acc4)" },
        data: { secret_id: "H(sid)" },
      },
    });
  });

  it("does not modify the caller's entry", () => {
    const copy = structuredClone(entry);
    redactEntry(entry, h);
    expect(entry).toEqual(copy);
  });

  it("treats fields it does not know as sensitive, so a new field cannot leak", () => {
    const odd = {
      type: "event",
      event: { name: "x", extra: "secret" },
      headers: { cookie: "c" },
    } as unknown as AuditEntry;
    expect(redactEntry(odd, h)).toEqual({
      type: "event",
      event: { name: "x", extra: "H(secret)" },
      headers: { cookie: "H(c)" },
    });
  });

  it("bounds nesting depth instead of recursing without end", () => {
    let deep: Record<string, unknown> = { leaf: "s" };
    for (let i = 0; i < 5000; i++) deep = { d: deep };
    const out = JSON.stringify(redactEntry({ type: "event", event: { name: "deep", data: deep } }, h));
    expect(out).toContain(TOO_DEEP_VALUE);
    expect(out).not.toContain('"s"');
  });

  it("refuses entry types reserved for the log itself", () => {
    const bad = { type: "checkpoint" } as unknown as AuditEntry;
    expect(() => redactEntry(bad, h)).toThrow(expect.objectContaining({ code: "FR_INTERNAL" }));
  });
});

describe("what reaches the file", () => {
  it("never contains a planted secret, with or without the HMAC key", async () => {
    const secrets = [
      "PLANTED-token-6f1e",
      "PLANTED-accessor-77aa",
      "PLANTED-password-c0de",
      "PLANTED-wrapped-9b9b",
      "PLANTED-evt-4242",
    ];
    const make = (): AuditEntry => ({
      type: "response",
      request: {
        id: "r",
        operation: "create",
        path: "auth/token/create",
        client_token: secrets[0],
        client_token_accessor: secrets[1],
        data: { password: secrets[2] },
      },
      auth: { accessor: secrets[1], policies: ["root"], client_token: secrets[0] },
      response: {
        status: 200,
        data: { wrap: [secrets[3]] },
        auth: { client_token: secrets[0], accessor: secrets[1] },
      },
      event: {
        name: "token.create",
        fields: { client_token: secrets[0] as string },
        data: { x: secrets[4] },
      },
    });
    await log.log(make()); // sealed: "[sealed]"
    log.setHmacKey(key);
    await log.log(make());
    await log.close();
    const text = await readFile(join(dir, "audit.log"), "utf8");
    for (const s of secrets) expect(text).not.toContain(s);
    expect(text).toContain(SEALED_VALUE);
    expect(text).toContain(log.hash(secrets[0] as string));
    expect(text).toContain('"path":"auth/token/create"');
  });
});

describe("redactToJson", () => {
  const h = (v: string) => `H(${v})`;
  const id = (v: string) => `I(${v})`;
  // A small deterministic generator of awkward values: nesting, arrays, numbers that JSON writes as null,
  // integer-like keys, Dates, Buffers, bigints, functions, undefined, sensitive keys at any depth.
  function value(seed: number, depth: number): unknown {
    const k = seed % 13;
    if (depth > 3) return `leaf${seed}`;
    switch (k) {
      case 0:
        return `s"${seed}\n\u2028`;
      case 1:
        return seed % 2 ? NaN : seed / 7;
      case 2:
        return seed % 3 === 0;
      case 3:
        return null;
      case 4:
        return undefined;
      case 5:
        return [value(seed * 3 + 1, depth + 1), undefined, value(seed * 5 + 2, depth + 1)];
      case 6:
        return new Date(seed * 1000);
      case 7:
        return Buffer.from(`b${seed}`);
      case 8:
        return BigInt(seed) * 10n ** 20n;
      case 9:
        return () => seed;
      case 10:
        return Infinity;
      default:
        return {
          [String(seed % 5)]: value(seed * 7 + 3, depth + 1),
          name: value(seed * 11 + 4, depth + 1),
          client_token: value(seed * 13 + 5, depth + 1),
          accessor: `acc${seed}`,
          nested: { deeper: value(seed * 17 + 6, depth + 2), "1": "one" },
        };
    }
  }

  it("writes exactly JSON.stringify(redactEntry(…)) for many entry shapes", () => {
    for (let seed = 0; seed < 400; seed++) {
      const entry = {
        type: (["request", "response", "event"] as const)[seed % 3],
        request: {
          id: `r${seed}`,
          operation: "read",
          path: `secret/data/${seed}`,
          client_token: `tok${seed % 4}`,
          data: value(seed, 0) as Record<string, unknown>,
          extra: value(seed + 1, 0),
        },
        auth: { accessor: `a${seed}`, policies: ["default", `p${seed}`], display_name: value(seed + 2, 0) },
        response: { status: 200, data: value(seed + 3, 0), auth: { client_token: `t${seed}` } },
        event: { name: "x", fields: { i: seed, client_token: "inside" }, data: value(seed + 4, 0) },
        error: seed % 2 ? "boom" : value(seed + 5, 0),
        unknown_section: value(seed + 6, 0),
      } as unknown as AuditEntry;
      expect(redactToJson(entry, h, id)).toBe(JSON.stringify(redactEntry(entry, h, id)));
    }
  });

  it("quotes a JSON-safe hasher's results as they are, with the same text", () => {
    const hx = jsonSafe((v: string) => "hmac-sha256:" + createHmac("sha256", key).update(v).digest("hex"));
    for (let seed = 0; seed < 100; seed++) {
      const entry = {
        type: "response",
        request: { id: `r${seed}`, operation: "read", path: "p", client_token: `t"${seed}\n` },
        response: { status: 200, data: value(seed, 0) },
      } as unknown as AuditEntry;
      expect(redactToJson(entry, hx, hx)).toBe(JSON.stringify(redactEntry(entry, hx, hx)));
    }
  });

  it("writes [too deep] for strings just past the limit too, plain or hashed, with any hasher", () => {
    const hx = jsonSafe((v: string) => `X(${v})`);
    // A string at every level, so that one sits exactly one level past the limit.
    let deep: Record<string, unknown> = { s: "leaf", client_token: "t" };
    for (let i = 0; i < 80; i++) deep = { s: `s${i}`, client_token: `t${i}`, d: deep };
    const entry = {
      type: "event",
      request: { id: "1", operation: "read", path: "p", data: deep },
      event: { name: "x", fields: deep },
    } as unknown as AuditEntry;
    for (const [hv, idv] of [
      [h, id],
      [hx, hx],
    ] as const) {
      const text = redactToJson(entry, hv, idv);
      expect(text).toBe(JSON.stringify(redactEntry(entry, hv, idv)));
      expect(text).toContain(TOO_DEEP_VALUE);
    }
  });

  it("treats a key named like an Object.prototype member as an unknown section: hashed", () => {
    const entry = {
      type: "event",
      constructor: { name: "secret-name" },
      toString: "secret-text",
      event: { name: "x" },
    } as unknown as AuditEntry;
    const text = redactToJson(entry, h, id);
    expect(text).toBe(JSON.stringify(redactEntry(entry, h, id)));
    expect(text).toContain('"constructor":{"name":"H(secret-name)"}');
    expect(text).toContain('"toString":"H(secret-text)"');
  });

  it("writes [too deep] past the depth limit, as redactEntry does", () => {
    let deep: Record<string, unknown> = { v: "x" };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const entry: AuditEntry = {
      type: "request",
      request: { id: "1", operation: "update", path: "p", data: deep },
    };
    const text = redactToJson(entry, h, id);
    expect(text).toBe(JSON.stringify(redactEntry(entry, h, id)));
    expect(text).toContain(TOO_DEEP_VALUE);
  });
});

describe("redactToJson with frozen sections", () => {
  it("reuses a deeply frozen section's JSON under the same key, and redoes it under another", () => {
    const auth = Object.freeze({
      accessor: "acc",
      policies: Object.freeze(["default"]) as string[],
      display_name: "t",
    });
    const e1: AuditEntry = { type: "response", request: { id: "1", operation: "get", path: "p" }, auth };
    const k1 = (v: string) => `K1(${v})`;
    const k2 = (v: string) => `K2(${v})`;
    expect(redactToJson(e1, k1, k1)).toBe(JSON.stringify(redactEntry(e1, k1, k1)));
    expect(redactToJson(e1, k1, k1)).toContain('"accessor":"K1(acc)"');
    expect(redactToJson(e1, k2, k2)).toContain('"accessor":"K2(acc)"');
  });

  it("does not keep a frozen section whose nested values can still change", () => {
    const nested = { accessor: "a1" };
    const section = Object.freeze({ id: "1", operation: "get", path: "p", data: nested });
    const e: AuditEntry = { type: "request", request: section as unknown as AuditEntry["request"] };
    const h = (v: string) => `H(${v})`;
    const first = redactToJson(e, h, h);
    nested.accessor = "a2";
    const second = redactToJson(e, h, h);
    expect(second).not.toBe(first);
    expect(second).toBe(JSON.stringify(redactEntry(e, h, h)));
  });

  it("reuses a deeply frozen response body's JSON per hasher and depth, and redoes a mutable one", () => {
    const body = Object.freeze({
      data: Object.freeze({ password: "p1", nested: Object.freeze([Object.freeze({ k: "v" }), 3, null]) }),
      metadata: Object.freeze({ version: 2, created_time: "2026-11-23T00:00:00Z" }),
    });
    const entry = (data: unknown): AuditEntry => ({
      type: "response",
      request: { id: "1", operation: "get", path: "secret/data/x" },
      response: { status: 200, data: data as Record<string, unknown> },
    });
    const k1 = (v: string) => `K1(${v})`;
    const k2 = (v: string) => `K2(${v})`;
    for (let i = 0; i < 2; i++) {
      expect(redactToJson(entry(body), k1, k1)).toBe(JSON.stringify(redactEntry(entry(body), k1, k1)));
      expect(redactToJson(entry(body), k2, k2)).toBe(JSON.stringify(redactEntry(entry(body), k2, k2)));
      // The same frozen object one level deeper (depth is part of what was cached).
      const wrapped = { outer: body };
      expect(redactToJson(entry(wrapped), k1, k1)).toBe(JSON.stringify(redactEntry(entry(wrapped), k1, k1)));
    }
    expect(redactToJson(entry(body), k1, k1)).not.toContain('"p1"');

    const inner = { password: "before" };
    const shallow = Object.freeze({ data: inner });
    const first = redactToJson(entry(shallow), k1, k1);
    inner.password = "after";
    const second = redactToJson(entry(shallow), k1, k1);
    expect(second).not.toBe(first);
    expect(second).toBe(JSON.stringify(redactEntry(entry(shallow), k1, k1)));
  });
});
