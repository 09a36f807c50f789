import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Unreachable, getBounded } from "../src/agent/enroll-http.js";
import { fetchRos2Crl } from "../src/agent/ros2-crl.js";
import { fetchTrustedRoot } from "../src/agent/trusted-root.js";

// The agent's bounded GET of public documents (the ROS 2 CRL, a TUF root) against a local server that
// answers what each case needs: a body, an error status, an endless body.
describe("agent: bounded GET of public documents", () => {
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/small") return res.end("hello");
      if (req.url === "/v1/ros2/crl/pem") {
        res.statusCode = 503;
        return res.end('{"errors":["ros2 is not configured"]}');
      }
      if (req.url === "/huge" || req.url === "/v1/updates/big/metadata/1.root.json") {
        res.setHeader("content-type", "application/octet-stream");
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (res.write(chunk)) {
            /* until the socket pushes back */
          }
        };
        res.on("drain", pump);
        res.on("close", () => res.off("drain", pump));
        return pump();
      }
      res.statusCode = 404;
      res.end("no such thing");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("returns the status and the body", async () => {
    const ok = await getBounded(new URL("/small", base), undefined, 1024, "the document");
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe("hello");
    const missing = await getBounded(new URL("/nope", base), undefined, 1024, "the document");
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toBe("no such thing");
  });

  it("stops reading past the limit and says which document was too large", async () => {
    await expect(getBounded(new URL("/huge", base), undefined, 256 * 1024, "the document")).rejects.toThrow(
      /\/huge: the document is larger than 262144 bytes/,
    );
    await expect(fetchTrustedRoot({ server: base, repo: "big" })).rejects.toThrow(
      /the root metadata is larger than 524288 bytes/,
    );
  });

  it("names the status a server answered and a server that cannot be reached", async () => {
    await expect(fetchTrustedRoot({ server: base, repo: "fleet" })).rejects.toThrow(
      /the server answered 404; is the repository name right\?/,
    );
    const crl = fetchRos2Crl(base, undefined);
    await expect(crl).rejects.toBeInstanceOf(Unreachable);
    await expect(crl).rejects.toThrow(/answered 503 .*ros2 is not configured.*is ros2\/config done\?/);
    // A port nobody listens on: the same Unreachable the agent's retry loop knows.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = getBounded(new URL(`http://127.0.0.1:${port}/x`), undefined, 1024, "the document");
    await expect(down).rejects.toBeInstanceOf(Unreachable);
    await expect(down).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });
});
