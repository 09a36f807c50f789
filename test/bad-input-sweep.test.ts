import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { createServer, type Server } from "../src/server/main.js";

/**
 * Every route the server registers, fed malformed bodies and fields of the wrong type: each answer is a
 * client error or a success, never a 5xx, and every error is Vault's JSON `{"errors": [...]}`. The audit
 * log still verifies afterwards. A regression net for the "bad input gets a clear error" rule.
 */

/** Full paths from Fastify's route tree (printRoutes without common prefixes). */
function routePaths(tree: string): string[] {
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of tree.split("\n")) {
    const at = line.search(/[├└]── /);
    if (at < 0) continue;
    const depth = at / 4;
    const rest = line.slice(at + 4);
    const paren = rest.lastIndexOf(" (");
    const segment = paren >= 0 ? rest.slice(0, paren) : rest;
    stack[depth] = (depth > 0 ? (stack[depth - 1] ?? "") : "") + segment;
    stack.length = depth + 1;
    if (paren >= 0) out.push(stack[depth]!);
  }
  return out;
}

/** A concrete URL for a route pattern: parameters and wildcards get `value`. */
function concrete(route: string, value: string): string {
  // The tree prints a wildcard under its parent without the slash between them (every one is "/*").
  const url = route.replace(/:[A-Za-z_]+/g, value).replace(/([^/])\*$/, "$1/*");
  // The catch-all serves the secrets engines: aim it at the default KV v2 mount.
  if (url === "/v1/*") return `/v1/secret/data/${value}`;
  return url.replace(/\*$/, value);
}

// Requests that would end the sweep early rather than test input handling.
const SKIP = new Set(["/v1/sys/seal", "/v1/auth/token/revoke-self"]);

/**
 * What answers without a token: Vault's unauthenticated sys endpoints, OCSP (RFC 6960 clients send no
 * token), the enrollment nonce a device asks for before it has credentials, the ROS 2 CRL devices fetch,
 * and Prometheus metrics.
 */
const OPEN = new Set([
  "/v1/sys/init",
  "/v1/sys/seal-status",
  "/v1/sys/health",
  "/v1/pki/ocsp/x",
  "/v1/fleet/enroll/nonce",
  "/v1/ros2/crl",
  "/v1/ros2/crl/pem",
  "/metrics",
]);

const RAW_BODIES = ["{", "[]", "null", '"text"', "1e400", '{"a":1e400}', '{"__proto__":{"x":1}}', "\u0000"];
const FIELDS = [
  "data",
  "options",
  "policies",
  "policy",
  "ttl",
  "num_uses",
  "common_name",
  "csr",
  "serial_number",
  "labels",
  "token",
  "secret_shares",
  "key",
  "versions",
  "custom_metadata",
  "type",
  "config",
  "alt_names",
];
const VALUES: unknown[] = [null, -1, 1e300, "", "x".repeat(5000), [], { a: {} }, "a\u0000b", "1e400"];

describe("bad input across every route", () => {
  let server: Server;
  let root: string;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fr-sweep-"));
    server = await createServer({ dev: true, env: {}, defaults: { data_dir: dir, listen: "127.0.0.1:0" } });
    root = server.devRootToken!;
  });

  afterAll(async () => {
    await server?.close();
  });

  it("never answers 5xx, and every error is Vault's JSON errors array", async () => {
    const routes = routePaths(server.app.printRoutes({ commonPrefix: false })).filter((r) => !SKIP.has(r));
    // The tree parse must find the server's routes, not a handful.
    expect(routes.length).toBeGreaterThan(60);
    expect(routes).toContain("/v1/sys/policies/acl/:name");
    expect(routes).toContain("/v1/pki/issue/:role");
    expect(routes.map((r) => concrete(r, "x"))).toContain("/v1/sys/mounts/x");

    const problems: string[] = [];
    let sent = 0;
    const send = async (
      method: string,
      url: string,
      payload?: string,
      type = "application/json",
      token: string | null = root,
    ) => {
      sent++;
      const r = await server.app.inject({
        method: method as "GET",
        url,
        headers: {
          ...(token !== null ? { "x-vault-token": token } : {}),
          ...(payload !== undefined ? { "content-type": type } : {}),
        },
        ...(payload !== undefined ? { payload } : {}),
      });
      if (token !== root && r.statusCode < 400 && !OPEN.has(url)) {
        problems.push(`${method} ${url} with token ${String(token).slice(0, 12)} → ${r.statusCode}`);
      }
      const what = `${method} ${url} ${payload === undefined ? "" : payload.slice(0, 60)} → ${r.statusCode}`;
      if (r.statusCode >= 500) problems.push(`${what} ${r.body.slice(0, 160)}`);
      else if (r.statusCode >= 400) {
        let errors: unknown;
        try {
          errors = (JSON.parse(r.body) as { errors?: unknown }).errors;
        } catch {
          errors = undefined;
        }
        const ok = Array.isArray(errors) && errors.length > 0 && errors.every((e) => typeof e === "string");
        if (!ok) problems.push(`${what}: not a JSON errors array: ${r.body.slice(0, 160)}`);
      }
    };

    for (const route of routes) {
      for (const value of ["x", "..", "%00"]) {
        const url = concrete(route, value);
        await send("GET", url);
        await send("GET", `${url}?list=true&version=-1&ttl=zz`);
        for (const raw of RAW_BODIES) await send("POST", url, raw);
      }
      const url = concrete(route, "x");
      // No token, an unknown one, an absurd one: refused (with Vault's errors body) unless the route is open.
      for (const token of [null, "hvs.not-a-token", "x".repeat(8000)]) {
        await send("GET", url, undefined, undefined, token);
        await send("POST", url, "{}", undefined, token);
      }
      await send("DELETE", url);
      await send("POST", url, "{}", "text/plain");
      for (const method of ["POST", "PATCH"]) {
        for (const field of FIELDS) {
          for (const v of VALUES) await send(method, url, JSON.stringify({ [field]: v }));
        }
      }
    }

    expect(problems.slice(0, 20)).toEqual([]);
    expect(sent).toBeGreaterThan(10_000);
    // Still serving, and the audit chain over all of it is intact.
    expect((await server.app.inject({ method: "GET", url: "/v1/sys/health" })).statusCode).toBe(200);
    await server.close();
    const audit = await verifyAuditLog(join(dir, "audit.log"), {});
    expect(audit.problem).toBeUndefined();
    expect(audit.ok).toBe(true);
  }, 300_000);
});
