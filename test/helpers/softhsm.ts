import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SoftHsmToken {
  /** Path of the PKCS#11 module. */
  readonly module: string;
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** A pkcs11: URI for `object` on this token with module-path and pin-value; `extra` adds path attributes ("id=%01;type=private"). */
  uri(object: string, extra?: string): string;
}

let confDir: string | undefined;
let mechanisms: readonly string[] | undefined;
const tokens = new Map<string, SoftHsmToken>();

/**
 * Restricts the mechanisms SoftHSM2 offers in this process (softhsm2.conf `slots.mechanisms`), to test a
 * token that lacks one. Call before the first softHsmToken().
 */
export function configureSoftHsm(opts: { mechanisms: readonly string[] }): void {
  if (confDir) throw new Error("configureSoftHsm() must run before the first softHsmToken() in this process");
  mechanisms = opts.mechanisms;
}

/**
 * A SoftHSM2 token for this test process, created on first use of its label. The first call makes a private
 * token directory and points SOFTHSM2_CONF at it. SoftHSM2 reads its token directory only in C_Initialize,
 * so create every token a test needs before opening keys (or after every KeyManager has been closed).
 * softhsm2-util missing is an error, never a skip.
 */
export async function softHsmToken(label = "fleetroot-test"): Promise<SoftHsmToken> {
  const existing = tokens.get(label);
  if (existing) return existing;
  const module = process.env.FLEETROOT_PKCS11_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so";
  if (!fs.existsSync(module)) {
    throw new Error(`SoftHSM2 module ${module} is missing: install softhsm2 (scripts/install-test-deps.sh)`);
  }
  ensureConf();
  const pin = crypto.randomBytes(4).toString("hex");
  const soPin = crypto.randomBytes(4).toString("hex");
  try {
    await run(
      "softhsm2-util",
      ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin],
      {
        env: process.env,
        timeout: 30_000,
      },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") {
      throw new Error("softhsm2-util is not installed: install softhsm2 (scripts/install-test-deps.sh)");
    }
    throw new Error(`softhsm2-util --init-token --label ${label} failed: ${err.stderr ?? err.message}`);
  }
  const token: SoftHsmToken = {
    module,
    label,
    pin,
    soPin,
    uri(object, extra) {
      const enc = encodeURIComponent;
      const attrs = `token=${enc(label)};object=${enc(object)}${extra ? `;${extra}` : ""}`;
      return `pkcs11:${attrs}?module-path=${enc(module)}&pin-value=${enc(pin)}`;
    },
  };
  tokens.set(label, token);
  return token;
}

function ensureConf(): void {
  if (confDir) return;
  sweepStaleDirs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${dirPrefix}${process.pid}-`));
  fs.mkdirSync(path.join(dir, "tokens"));
  const lines = [
    `directories.tokendir = ${path.join(dir, "tokens")}`,
    "objectstore.backend = file",
    "log.level = ERROR",
  ];
  if (mechanisms) lines.push(`slots.mechanisms = ${mechanisms.join(",")}`);
  fs.writeFileSync(path.join(dir, "softhsm2.conf"), lines.join("\n") + "\n");
  // Must be set before any C_Initialize in this process: SoftHSM2 reads it once.
  process.env.SOFTHSM2_CONF = path.join(dir, "softhsm2.conf");
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  confDir = dir;
}

const dirPrefix = "fleetroot-softhsm-";

/**
 * Test workers are often killed rather than exiting, so the exit hook does not always run: remove token
 * directories left by processes that no longer exist (the directory name carries the owner's pid).
 */
function sweepStaleDirs(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${dirPrefix}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
