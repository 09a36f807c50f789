import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A benchmark's server in a child process, and what it printed about itself when ready. */
export interface ServeChild<I> {
  info: I;
  child: ChildProcess;
  stop(): void;
}

const running = new Set<ChildProcess>();

/**
 * How this process loads TypeScript, for its children: tsx, plus the hook that swaps src/ modules for
 * their compiled twins in .bench-dist/ when `npm run bench` built them (see dist-hooks.mjs).
 */
export function loaderArgs(): string[] {
  const args = ["--import", "tsx"];
  if (process.env.FLEETROOT_BENCH_CODE === "dist")
    args.push("--import", fileURLToPath(new URL("./use-dist.mjs", import.meta.url)));
  return args;
}
let hooked = false;

/**
 * Runs `script serve …args` under tsx and resolves with the first line of JSON the child prints on stdout
 * (its URL, token and the like). Rejects if the child exits first. Every child started here is killed
 * when this process exits, however it exits: a benchmark that fails half-way leaves no server behind
 * holding its port and its output pipe.
 */
export async function startServeChild<I = Record<string, string>>(
  script: string,
  args: readonly string[],
  opts: { ipc?: boolean } = {},
): Promise<ServeChild<I>> {
  const child = spawn(process.execPath, [...loaderArgs(), script, "serve", ...args], {
    stdio: opts.ipc ? ["ignore", "pipe", "inherit", "ipc"] : ["ignore", "pipe", "inherit"],
  });
  running.add(child);
  child.on("exit", () => running.delete(child));
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of running) c.kill("SIGTERM");
    });
  }
  const info = await new Promise<I>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const line = buf.split("\n").find((l) => l.startsWith("{") && l.endsWith("}"));
      if (line) resolve(JSON.parse(line) as I);
    });
    child.on("exit", (c) => reject(new Error(`${args.join(" ")} server exited with ${c}`)));
  });
  return { info, child, stop: () => child.kill("SIGTERM") };
}
