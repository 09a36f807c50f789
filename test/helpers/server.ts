import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { createServer, type Server, type ServerOptions } from "../../src/server/main.js";
import { ManualClock } from "../../src/util/clock.js";

export interface TestServer {
  server: Server;
  dataDir: string;
  clock: ManualClock;
  call(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A server on a temp data dir and the given storage URL, driven through inject(); restartable. */
export async function startTestServer(
  storage: string,
  opts: {
    seal?: Record<string, unknown>;
    defaults?: Record<string, unknown>;
    dataDir?: string;
    clock?: ManualClock;
  } & Partial<ServerOptions> = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "fr-srv-"));
  const clock = opts.clock ?? new ManualClock(Date.UTC(2026, 10, 23, 12, 0, 0));
  const make = () =>
    createServer({
      // Only the variable the PKCS#11 default (and keys.pkcs11_modules' default) reads, as test tokens use it.
      env: process.env.FLEETROOT_PKCS11_MODULE
        ? { FLEETROOT_PKCS11_MODULE: process.env.FLEETROOT_PKCS11_MODULE }
        : {},
      clock,
      dev: opts.dev ?? false,
      ...(opts.modules ? { modules: opts.modules } : {}),
      defaults: {
        data_dir: dataDir,
        storage,
        listen: "127.0.0.1:0",
        seal: opts.seal ?? { type: "shamir" },
        ...(opts.defaults ?? {}),
      },
    });
  const t: TestServer = {
    server: await make(),
    dataDir,
    clock,
    call: (method, path, body, token, headers = {}) =>
      t.server.app.inject({
        method: method as "GET",
        url: `/v1/${path}`,
        headers: {
          ...(token ? { "x-vault-token": token } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        ...(body !== undefined ? { payload: typeof body === "string" ? body : JSON.stringify(body) } : {}),
      }),
    async restart() {
      await t.server.close();
      t.server = await make();
    },
    close: () => t.server.close(),
  };
  return t;
}
