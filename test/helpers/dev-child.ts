import { spawn, type ChildProcess } from "node:child_process";
import { cliBin, projectRoot } from "./cli.js";

/** A `fleetroot server --dev` child process and what it printed so far. */
export interface DevServerChild {
  child: ChildProcess;
  /** stdout and stderr together, as printed so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `fleetroot server --dev` from source on a free loopback port and `dataDir`; killed after 60 s at the latest. */
export function spawnDevServer(dataDir: string): DevServerChild {
  const child = spawn(process.execPath, [cliBin, "server", "--dev"], {
    cwd: projectRoot,
    env: {
      ...process.env,
      FLEETROOT_FROM_SOURCE: "1",
      FLEETROOT_DATA_DIR: dataDir,
      FLEETROOT_LISTEN: "127.0.0.1:0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => out, exited };
}
