import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createServer } from "../src/server/main.js";

describe("shutdown with a client that stalls half-way through a request", () => {
  it("close() drops the stalled connection after the grace period and finishes", async () => {
    const server = await createServer({
      dev: true,
      env: {},
      defaults: { data_dir: mkdtempSync(join(tmpdir(), "fr-stall-")), listen: "127.0.0.1:0" },
      shutdownGraceMs: 300,
    });
    const port = Number(new URL(await server.listen()).port);
    const socket = connect(port, "127.0.0.1");
    const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    // The headers promise 100 bytes of body; only a few ever come.
    socket.write(
      "PUT /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" +
        '{"key":',
    );
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5_000);
    await ended;
  });
});
