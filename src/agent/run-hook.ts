import { exec } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * Runs the operator's reload command after a new pair went live (e.g. `systemctl reload mosquitto`),
 * with FLEETROOT_CERT, FLEETROOT_KEY (the key file, or — for a key in an HSM — the key.uri file, with
 * FLEETROOT_KEY_URI holding the pkcs11: URI without its PIN), FLEETROOT_CHAIN and FLEETROOT_DIR set.
 * A failing hook is reported, not fatal: the new pair is already in place.
 */
export function runReloadHook(cmd: string, genDir: string): Promise<{ ok: boolean; output: string }> {
  const uriFile = path.join(genDir, "key.uri");
  const hsm = !existsSync(path.join(genDir, "key.pem")) && existsSync(uriFile);
  const keyEnv = hsm
    ? {
        FLEETROOT_KEY: uriFile,
        FLEETROOT_KEY_URI: readFileSync(uriFile, "utf8")
          .trim()
          .replace(/([?&;])pin-value=[^&;]*/g, "$1")
          .replace(/[?&;]$/, ""),
      }
    : { FLEETROOT_KEY: path.join(genDir, "key.pem") };
  return new Promise((resolve) => {
    exec(
      cmd,
      {
        timeout: 60_000,
        env: {
          ...process.env,
          FLEETROOT_DIR: genDir,
          FLEETROOT_CERT: path.join(genDir, "cert.pem"),
          ...keyEnv,
          FLEETROOT_CHAIN: path.join(genDir, "chain.pem"),
        },
      },
      (err, stdout, stderr) => resolve({ ok: !err, output: `${stdout}${stderr}`.trim() }),
    );
  });
}
