/** Shared setup for the device/enrollment tests: a real server (PKI + fleet modules) on loopback. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { ManualClock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { serverTls } from "./helpers/tls.js";

export { serverTls };

export interface Fleet {
  t: TestServer;
  root: string;
  /** Base URL the server listens on (https when tls). */
  url: string;
  /** CA file that verifies the server's TLS certificate. */
  tlsCa: string | undefined;
  dir: string;
  clock: ManualClock;
  api(method: string, path: string, body?: unknown): Promise<Record<string, unknown> & { status: number }>;
  close(): Promise<void>;
}

export async function startFleet(
  opts: { storage?: string; tls?: boolean; roleTtl?: string } = {},
): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), "fr-fleet-"));
  // Real time (whole seconds), so TLS, openssl and certificate validity agree with the server's clock.
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  let tlsCa: string | undefined;
  const defaults: Record<string, unknown> = {};
  if (opts.tls) {
    const tls = serverTls(dir);
    tlsCa = tls.cert;
    defaults.tls = { cert_file: tls.cert, key_file: tls.key, client_ca_file: tls.cert };
  }
  const t = await startTestServer(opts.storage ?? `sqlite:${join(dir, "fr.db")}`, {
    dataDir: dir,
    clock,
    defaults,
  });
  const init = (await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 })).json();
  await t.call("PUT", "sys/unseal", { key: init.keys[0] });
  const root = init.root_token as string;
  const api: Fleet["api"] = async (method, path, body) => {
    const r = await t.call(method, path, body, root);
    const json = r.body ? (r.json() as Record<string, unknown>) : {};
    return { ...json, status: r.statusCode };
  };
  const ca = await api("POST", "pki/root/generate/internal", {
    common_name: "Fleet Test Root",
    ttl: "8760h",
  });
  expect(ca.status, JSON.stringify(ca)).toBe(200);
  const role = await api("POST", "pki/roles/device", {
    allow_any_name: true,
    enforce_hostnames: false,
    allowed_uri_sans: ["urn:fleetroot:device:*"],
    ttl: opts.roleTtl ?? "1h",
    max_ttl: "24h",
    key_type: "any",
    server_flag: false,
    client_flag: true,
  });
  expect(role.status, JSON.stringify(role)).toBeLessThan(300);
  const url = await t.server.listen();
  return {
    t,
    root,
    url,
    tlsCa,
    dir,
    clock,
    api,
    close: () => t.close(),
  };
}

export function writeTemp(dir: string, name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}
