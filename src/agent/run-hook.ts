import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export interface HookResult {
  readonly ok: boolean;
  /** What went wrong (exit status or timeout) followed by the hook's output, when it failed. */
  readonly output: string;
}

/** Output kept from a hook, so a chatty one cannot fill the agent's memory. */
const MAX_OUTPUT = 16 * 1024;

/** How a command run by runInProcessGroup ended. */
export type GroupOutcome =
  | { readonly kind: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: "timeout" }
  | { readonly kind: "error"; readonly message: string };

/**
 * Runs an operator's command (`/bin/sh -c cmd`) in its own process group, handing its output to `onData`.
 * At `timeoutMs`, or when `kill()` is called (an output cap, say), the whole group gets SIGKILL, so
 * neither a command that ignores SIGTERM nor the children it left in the background outlive it. `done`
 * resolves once the command has exited and its output has arrived — or 200 ms after the exit, since a
 * background child may hold the pipes open for longer.
 */
export function runInProcessGroup(
  cmd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  onData: { stdout(d: Buffer): void; stderr(d: Buffer): void },
): { done: Promise<GroupOutcome>; kill(): void } {
  const child = spawn("/bin/sh", ["-c", cmd], { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      /* the group is gone already */
    }
  };
  child.stdout.on("data", onData.stdout);
  child.stderr.on("data", onData.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const done = new Promise<GroupOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: GroupOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(outcome);
    };
    child.on("error", (e) => settle({ kind: "error", message: e.message }));
    child.on("exit", (code, signal) => {
      const outcome: GroupOutcome = timedOut ? { kind: "timeout" } : { kind: "exit", code, signal };
      child.once("close", () => settle(outcome));
      setTimeout(() => settle(outcome), 200).unref();
    });
  });
  return { done, kill };
}

/**
 * Runs the operator's reload command after a new pair went live (e.g. `systemctl reload mosquitto`),
 * with FLEETROOT_CERT, FLEETROOT_KEY (the key file, or — for a key in an HSM — the key.uri file, with
 * FLEETROOT_KEY_URI holding the pkcs11: URI without its PIN), FLEETROOT_CHAIN and FLEETROOT_DIR set.
 * A failing hook is reported, not fatal: the new pair is already in place.
 * The hook runs in its own process group, and the whole group is killed (SIGKILL) once `timeoutMs`
 * has passed, so a hook that ignores SIGTERM or leaves children behind cannot stall the agent.
 */
export async function runReloadHook(cmd: string, genDir: string, timeoutMs = 60_000): Promise<HookResult> {
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
  let output = "";
  const keep = (d: Buffer) => {
    if (output.length < MAX_OUTPUT) output += d.toString("utf8").slice(0, MAX_OUTPUT - output.length);
  };
  const env = {
    ...process.env,
    FLEETROOT_DIR: genDir,
    FLEETROOT_CERT: path.join(genDir, "cert.pem"),
    ...keyEnv,
    FLEETROOT_CHAIN: path.join(genDir, "chain.pem"),
  };
  const r = await runInProcessGroup(cmd, env, timeoutMs, { stdout: keep, stderr: keep }).done;
  const why =
    r.kind === "timeout"
      ? `timed out after ${Math.round(timeoutMs / 1000)}s and was killed`
      : r.kind === "error"
        ? `cannot run the hook (${r.message})`
        : r.code === 0
          ? undefined
          : r.signal
            ? `killed by ${r.signal}`
            : `exited with status ${r.code}`;
  return { ok: why === undefined, output: [why, output.trim()].filter(Boolean).join(": ") };
}
