import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/util/clock.js";
import { type PkiServer, runAsync, setupHierarchy, startPkiServer, tempDir, write } from "./helpers/pki.js";

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });

async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, "127.0.0.1", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${ms} ms`);
}

/**
 * Mosquitto (a real TLS peer) with require_certificate and Fleetroot's CRL: a Fleetroot-issued client
 * certificate connects; after revocation and a CRL refresh the same client is refused.
 */
describe("pki with mosquitto: mutual TLS and CRL", () => {
  const dir = tempDir("fr-pki-mqtt-");
  const f = (n: string) => join(dir, n);
  let s: PkiServer;
  let broker: ChildProcess | undefined;
  let port = 0;

  const startBroker = async () => {
    broker = spawn("mosquitto", ["-c", f("mosquitto.conf")], { stdio: "ignore" });
    await waitForPort(port);
  };
  const stopBroker = async () => {
    const b = broker;
    broker = undefined;
    if (!b || b.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => b.kill("SIGKILL"), 5000);
      b.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      b.kill("SIGTERM");
    });
  };
  const publish = (client = "client") =>
    runAsync(
      "mosquitto_pub",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "--cafile",
        f("ca.pem"),
        "--cert",
        f(`${client}.pem`),
        "--key",
        f(`${client}.key`),
        "-t",
        "fleet/test",
        "-m",
        "hello",
        "-q",
        "1",
      ],
      15_000,
    );
  const writeCrl = async () => write(dir, "crl.pem", (await s.t.call("GET", "pki/crl/pem")).body);

  beforeAll(async () => {
    chmodSync(dir, 0o755); // mosquitto may drop privileges before reading its files
    s = await startPkiServer(`sqlite:${f("fr.db")}`, {
      dataDir: join(dir, "data"),
      clock: new ManualClock(Date.now()),
    });
    const h = await setupHierarchy(s, { role: { allow_ip_sans: true } });
    write(dir, "ca.pem", h.rootPem + h.intermediatePem);
    const srv = await s.call("POST", "pki/issue/device", {
      common_name: "broker.fleet.example",
      ip_sans: "127.0.0.1",
    });
    write(dir, "server.pem", srv.json().data.certificate);
    write(dir, "server.key", srv.json().data.private_key);
    const cl = await s.call("POST", "pki/issue/device", { common_name: "drone1.fleet.example" });
    expect(cl.statusCode).toBe(200);
    write(dir, "client.pem", cl.json().data.certificate);
    write(dir, "client.key", cl.json().data.private_key);
    const other = await s.call("POST", "pki/issue/device", { common_name: "drone2.fleet.example" });
    write(dir, "client2.pem", other.json().data.certificate);
    write(dir, "client2.key", other.json().data.private_key);
    for (const k of ["server.key", "client.key", "client2.key"]) chmodSync(f(k), 0o644);
    port = await freePort();
    write(
      dir,
      "mosquitto.conf",
      [
        `listener ${port} 127.0.0.1`,
        `cafile ${f("ca.pem")}`,
        `certfile ${f("server.pem")}`,
        `keyfile ${f("server.key")}`,
        "require_certificate true",
        `crlfile ${f("crl.pem")}`,
        "allow_anonymous true",
        "",
      ].join("\n"),
    );
    await writeCrl();
    (globalThis as { clientSerial?: string }).clientSerial = cl.json().data.serial_number;
  }, 30_000);
  afterAll(async () => {
    await stopBroker();
    await s?.t.close();
  });

  it("connects with a Fleetroot certificate, is refused after revocation + CRL refresh", async () => {
    await startBroker();
    const ok = await publish();
    expect(ok.code, ok.out).toBe(0);

    const serial = (globalThis as { clientSerial?: string }).clientSerial;
    expect(
      (await s.call("POST", "pki/revoke", { serial_number: serial, reason: "keyCompromise" })).statusCode,
    ).toBe(200);
    expect((await s.call("GET", "pki/crl/rotate")).statusCode).toBe(200);
    await writeCrl();
    await stopBroker();
    await startBroker();
    const refused = await publish();
    expect(refused.code).not.toBe(0);
    // The same broker and CRL still accept a certificate that is not revoked: the refusal is the CRL's.
    const still = await publish("client2");
    expect(still.code, still.out).toBe(0);
  }, 60_000);
});
