import type { ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";

/**
 * What a benchmark server reports about itself over its IPC channel: the process's CPU time (all its
 * threads: the event loop, the thread pool's fdatasync calls, GC helpers), its event loop's busy and idle
 * time, and whatever counters the benchmark adds.
 */
export interface ServerStats {
  /** Process CPU time in microseconds (user + system). */
  cpuUs: number;
  /** Event-loop time spent running callbacks and waiting, in milliseconds (performance.eventLoopUtilization). */
  loopActiveMs: number;
  loopIdleMs: number;
  [counter: string]: number;
}

/**
 * In a server child: answers every message from the parent with its ServerStats (plus `extra()`'s
 * counters). The parent asks before and after each measurement (see statsOf).
 */
export function answerStats(extra: () => Record<string, number> = () => ({})): void {
  process.on("message", () => {
    const cpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization();
    process.send?.({
      ...extra(),
      cpuUs: cpu.user + cpu.system,
      loopActiveMs: elu.active,
      loopIdleMs: elu.idle,
    } satisfies ServerStats);
  });
}

/** In the parent: asks a child started with an IPC channel for its ServerStats. */
export function statsOf(child: ChildProcess): Promise<ServerStats> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as ServerStats));
    child.send("stats");
  });
}

/** Where one measurement's CPU went, per request. */
export interface CpuFigure {
  /** The server process's CPU per request, µs. */
  serverUs: number;
  /** Share of the time the server's event loop was running callbacks (1 = never waiting). */
  loopBusy: number;
  /** The load client's (this process's) CPU per request, µs. */
  clientUs: number;
}

/** Per-request CPU between two ServerStats samples and two process.cpuUsage() readings of this process. */
export function cpuFigure(
  before: ServerStats,
  after: ServerStats,
  clientBefore: NodeJS.CpuUsage,
  requests: number,
): CpuFigure {
  const client = process.cpuUsage(clientBefore);
  const active = after.loopActiveMs - before.loopActiveMs;
  const idle = after.loopIdleMs - before.loopIdleMs;
  const n = Math.max(1, requests);
  return {
    serverUs: (after.cpuUs - before.cpuUs) / n,
    loopBusy: active + idle > 0 ? active / (active + idle) : 0,
    clientUs: (client.user + client.system) / n,
  };
}

/** "server 36 µs/req (loop 95% busy), load client 21 µs/req". */
export function showCpu(c: CpuFigure): string {
  return (
    `server ${c.serverUs.toFixed(0)} µs/req (loop ${(c.loopBusy * 100).toFixed(0)}% busy), ` +
    `load client ${c.clientUs.toFixed(0)} µs/req`
  );
}
