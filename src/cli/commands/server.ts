import type { Command } from "commander";
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
      const { createServer } = await import("../../server/main.js");
      const server = await createServer({
        configFile: o.config,
        dev: o.dev ?? false,
        devCa: o.dev ?? false,
        acceptAuditLoss: o.acceptAuditLoss ?? false,
        log: (line) => process.stdout.write(line + "\n"),
      });
      try {
        await server.listen();
      } catch (e) {
        await server.close();
        const err = e as NodeJS.ErrnoException;
        if (err.code === "EADDRINUSE")
          throw new CliError(
            `cannot listen on ${server.config.listen}: the address is in use (another server running?)`,
          );
        throw e;
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
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      await new Promise<never>(() => undefined);
    });
}
