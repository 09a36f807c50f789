import { exec } from "node:child_process";
import path from "node:path";

/**
 * Runs the operator's reload command after a new pair went live (e.g. `systemctl reload mosquitto`),
 * with FLEETROOT_CERT, FLEETROOT_KEY, FLEETROOT_CHAIN and FLEETROOT_DIR set. A failing hook is
 * reported, not fatal: the new pair is already in place.
 */
export function runReloadHook(cmd: string, genDir: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    exec(
      cmd,
      {
        timeout: 60_000,
        env: {
          ...process.env,
          FLEETROOT_DIR: genDir,
          FLEETROOT_CERT: path.join(genDir, "cert.pem"),
          FLEETROOT_KEY: path.join(genDir, "key.pem"),
          FLEETROOT_CHAIN: path.join(genDir, "chain.pem"),
        },
      },
      (err, stdout, stderr) => resolve({ ok: !err, output: `${stdout}${stderr}`.trim() }),
    );
  });
}
