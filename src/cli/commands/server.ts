import type { Command } from "commander";
import type { Server } from "../../server/main.js";
import { CliError } from "../output.js";

export function serverCommand(program: Command): void {
  program
    .command("server")
    .summary("run the Fleetroot server (--dev for a throw-away one, --config FILE for production)")
    .description(
      "run the Fleetroot server.\n" +
        "  --dev: loopback HTTP on 127.0.0.1:8200, data in ./.fleetroot-dev, initialized and unsealed automatically.\n" +
        "  --config FILE: production; TLS is required on any non-loopback address; FLEETROOT_* variables override keys.\n" +
        "  Another address or data directory (also with --dev): FLEETROOT_LISTEN=127.0.0.1:8300, FLEETROOT_DATA_DIR=DIR.",
    )
    .option("--dev", "development mode (never for production)")
    .option("-c, --config <file>", "configuration file (YAML)", process.env.FLEETROOT_CONFIG)
    .option(
      "--accept-audit-loss",
      "start even though the audit log lost lines the store knows it had (emptied, cut short or replaced: " +
        "restore it from a backup first if you can); the loss is recorded in the log",
    )
    .action(async (o: { dev?: boolean; config?: string; acceptAuditLoss?: boolean }) => {
      if (!o.dev && !o.config) {
        throw new CliError(
          "give --config FILE for a production server, or --dev for a throw-away development server",
          2,
        );
      }
      // At once, before anything is opened: a SIGTERM or SIGINT during the start must not kill it between
      // creating a file and writing it (an empty audit log, say). The start stops at its next step instead,
      // closes what it opened and removes what it made.
      const start = new AbortController();
      let startSignal: NodeJS.Signals | undefined;
      const onStartSignal = (signal: NodeJS.Signals) => {
        startSignal ??= signal;
        start.abort(new Error(`${signal} received while starting`));
      };
      process.on("SIGTERM", onStartSignal);
      process.on("SIGINT", onStartSignal);
      const startEnded = (): void => {
        process.off("SIGTERM", onStartSignal);
        process.off("SIGINT", onStartSignal);
      };
      /** Whether `e` is the stop asked for during the start (which then says so): an exit 0, not an error. */
      const wasInterrupted = (e: unknown): boolean => {
        if (!start.signal.aborted || e !== start.signal.reason) return false;
        process.stdout.write(
          `${startSignal} received while starting: start interrupted, nothing is running\n`,
        );
        return true;
      };

      let server: Server;
      try {
        const { createServer } = await import("../../server/main.js");
        start.signal.throwIfAborted();
        server = await createServer({
          configFile: o.config,
          dev: o.dev ?? false,
          devCa: o.dev ?? false,
          acceptAuditLoss: o.acceptAuditLoss ?? false,
          log: (line) => process.stdout.write(line + "\n"),
          signal: start.signal,
        });
      } catch (e) {
        startEnded();
        if (wasInterrupted(e)) return;
        throw e;
      }
      try {
        start.signal.throwIfAborted();
        await server.listen();
      } catch (e) {
        // Never listened: what this start created goes again (a data_dir that was there stays as it was).
        await server.discard();
        startEnded();
        if (wasInterrupted(e)) return;
        throw listenError(e, server.config.listen);
      }
      process.env.FLEETROOT_SERVER_RUNNING = "1";
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write(`${signal} received: finishing requests and closing\n`);
        server
          .close()
          .then(() => process.exit(0))
          .catch((e: unknown) => {
            process.stderr.write(`shutdown failed: ${(e as Error).message}\n`);
            process.exit(1);
          });
      };
      startEnded();
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      // A signal that came while it began to listen: the server is up, so it is an ordinary stop.
      if (startSignal) stop(startSignal);
      await new Promise<never>(() => undefined);
    });
}

/** The one line for a listen that failed on an address it cannot have. */
function listenError(e: unknown, listen: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new CliError(`cannot listen on ${listen}: the address is in use (another server running?)`);
  if (code === "EADDRNOTAVAIL")
    return new CliError(
      `cannot listen on ${listen}: the address is not one of this machine's (EADDRNOTAVAIL); ` +
        "set listen to an address of one of its interfaces",
    );
  return e;
}
