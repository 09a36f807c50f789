import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export interface HookResult {
  readonly ok: boolean;
  /** What went wrong (exit status or timeout) followed by the hook's output, when it failed. */
  readonly output: string;
}

/** Output kept from a hook, so a chatty one cannot fill the agent's memory. */
const MAX_OUTPUT = 16 * 1024;

/** SIGKILL to the whole process group of a child spawned with `detached: true` (it leads its own group). */
export function killProcessGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    /* the group is gone already */
  }
}

/**
 * Runs the operator's reload command after a new pair went live (e.g. `systemctl reload mosquitto`),
 * with FLEETROOT_CERT, FLEETROOT_KEY (the key file, or — for a key in an HSM — the key.uri file, with
 * FLEETROOT_KEY_URI holding the pkcs11: URI without its PIN), FLEETROOT_CHAIN and FLEETROOT_DIR set.
 * A failing hook is reported, not fatal: the new pair is already in place.
 * The hook runs in its own process group, and the whole group is killed (SIGKILL) once `timeoutMs`
 * has passed, so a hook that ignores SIGTERM or leaves children behind cannot stall the agent.
 */
export function runReloadHook(cmd: string, genDir: string, timeoutMs = 60_000): Promise<HookResult> {
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
    const child = spawn("/bin/sh", ["-c", cmd], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        FLEETROOT_DIR: genDir,
        FLEETROOT_CERT: path.join(genDir, "cert.pem"),
        ...keyEnv,
        FLEETROOT_CHAIN: path.join(genDir, "chain.pem"),
      },
    });
    let output = "";
    const keep = (d: Buffer) => {
      if (output.length < MAX_OUTPUT) output += d.toString("utf8").slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const killGroup = () => killProcessGroup(child);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    let settled = false;
    const done = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Children the hook left running in the background do not hold the agent up.
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ ok: why === undefined, output: [why, output.trim()].filter(Boolean).join(": ") });
    };
    child.on("error", (e) => done(`cannot run the hook (${e.message})`));
    child.on("exit", (code, signal) => {
      const why = timedOut
        ? `timed out after ${Math.round(timeoutMs / 1000)}s and was killed`
        : code === 0
          ? undefined
          : signal
            ? `killed by ${signal}`
            : `exited with status ${code}`;
      // The rest of its output arrives with "close"; a background child may hold the pipes open longer.
      child.once("close", () => done(why));
      setTimeout(() => done(why), 200).unref();
    });
  });
}
