import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";

/** Sends raw bytes and collects the whole answer (the server closes LIST connections). */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(text));
    let out = "";
    s.on("data", (d) => (out += d.toString()));
    s.on("end", () => resolve(out));
    s.on("error", reject);
    s.setTimeout(5000, () => reject(new Error("timeout")));
  });
}

describe("the LIST HTTP method Vault clients send", () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: mkdtempSync(join(tmpdir(), "fr-list-")), listen: "127.0.0.1:0" },
    });
    port = Number(new URL(await server.listen()).port);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("is served like GET ?list=true, through auth and ACL", async () => {
    const token = server.devRootToken!;
    const ok = await rawRequest(
      port,
      `LIST /v1/sys/policies/acl HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${token}\r\n\r\n`,
    );
    expect(ok).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const body = JSON.parse(ok.slice(ok.indexOf("\r\n\r\n") + 4));
    expect(body.data.keys).toContain("default");
    const denied = await rawRequest(port, "LIST /v1/sys/policies/acl HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(denied).toMatch(/^HTTP\/1\.1 403 /);
  });

  it("an unknown method and other malformed requests get a JSON error and the connection closes", async () => {
    const bodyOf = (res: string) => JSON.parse(res.slice(res.indexOf("\r\n\r\n") + 4));
    const fly = await rawRequest(port, "FLY /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(fly).toMatch(/^HTTP\/1\.1 405 /);
    expect(fly).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
    expect(bodyOf(fly)).toEqual({
      code: "FR_METHOD_NOT_ALLOWED",
      errors: [expect.stringMatching(/unknown HTTP method; the API takes GET, LIST/)],
    });
    const garbage = await rawRequest(port, "GET /v1/sys/health HTTP/1.1\r\nHo st: x\r\n\r\n");
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(garbage).code).toBe("FR_BAD_REQUEST");
    const huge = await rawRequest(
      port,
      `GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(huge)).toMatchObject({
      code: "FR_BAD_REQUEST",
      errors: [expect.stringMatching(/too large/)],
    });
  });
});
