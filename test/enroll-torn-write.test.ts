import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { readConfig, readPair } from "../src/agent/files.js";
import { renewOnce } from "../src/agent/run.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { projectRoot } from "./helpers/cli.js";

/**
 * A real agent process renews and is SIGKILLed mid-write (after the new key, or after the whole new
 * generation but before it goes live). The previous pair must stay current and usable — for TLS and for
 * the next renewal.
 */
describe("agent killed while writing keeps the previous key/cert pair usable", () => {
  let f: Fleet;
  let dir = "";
  let script = "";
  beforeAll(async () => {
    f = await startFleet({ tls: true });
    await f.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
    const tk = await f.api("POST", "fleet/provisioners/factory/tokens", { device_id: "torn-1" });
    dir = mkdtempSync(join(tmpdir(), "fr-agent-"));
    await enrollDevice({
      server: f.url,
      caCert: f.tlsCa,
      provisioner: "factory",
      out: dir,
      proof: { type: "token", token: (tk.data as { token: string }).token },
    });
    script = join(dir, "..", `kill-${Date.now()}.mts`);
    const run = pathToFileURL(join(projectRoot, "src/agent/run.ts")).href;
    const files = pathToFileURL(join(projectRoot, "src/agent/files.ts")).href;
    writeFileSync(
      script,
      `import { renewOnce } from ${JSON.stringify(run)};
import { readConfig } from ${JSON.stringify(files)};
const [dir, at, rekey] = process.argv.slice(2);
const die = () => process.kill(process.pid, "SIGKILL");
await renewOnce(dir, { ...(await readConfig(dir)), ...(rekey ? { rekey } : {}) }, at === "afterKey" ? { afterKey: die } : { beforeSwap: die });
`,
    );
  });
  afterAll(async () => f?.close());

  for (const [at, rekey] of [
    ["afterKey", "ecdsa-p256"],
    ["beforeSwap", "ecdsa-p256"],
    ["beforeSwap", ""],
  ] as const) {
    it(`killed ${at}${rekey ? " while rekeying" : ""}`, async () => {
      const before = await readPair(dir);
      // Asynchronous: the server under test runs in this process and must keep answering.
      const child = await new Promise<{ signal: string | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, ["--import", "tsx", script, dir, at, rekey], { cwd: projectRoot });
        let stderr = "";
        p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => p.kill("SIGTERM"), 30_000);
        p.on("close", (_code, signal) => {
          clearTimeout(timer);
          resolve({ signal, stderr });
        });
      });
      expect(child.signal, child.stderr).toBe("SIGKILL");
      expect(readdirSync(dir).some((n) => n.startsWith(".tmp-gen-") || /^gen-\d+$/.test(n))).toBe(true);
      const after = await readPair(dir); // throws if cert and key do not match
      expect(after.state.serial).toBe(before.state.serial);
      expect(after.keyPem).toBe(before.keyPem);
      // Still usable: the next renewal (mutual TLS with this pair) succeeds and cleans up.
      const r = await renewOnce(dir, await readConfig(dir));
      expect(r.serial).not.toBe(before.state.serial);
      expect(readdirSync(dir).filter((n) => n.startsWith(".tmp-gen-"))).toEqual([]);
    });
  }
});
