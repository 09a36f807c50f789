import { Command, CommanderError, Option } from "commander";
import { FleetError } from "../errors/index.js";
import { auditCommands } from "./commands/audit.js";
import { caCommands } from "./commands/ca.js";
import { operatorCommands } from "./commands/operator.js";
import { policyCommands } from "./commands/policy.js";
import { ros2Commands } from "./commands/ros2.js";
import { serverCommand } from "./commands/server.js";
import { tokenCommands } from "./commands/token.js";
import { updatesCommands } from "./commands/updates.js";
import { agentCommands } from "./commands/agent.js";
import { deviceCommands } from "./commands/device.js";
import { kvCommands } from "./commands/kv.js";
import { secretsCommands } from "./commands/secrets.js";
import { CliError } from "./output.js";

export type CommandGroup = (program: Command) => void;

/** The extra command groups feature modules contribute (pki, devices, ros2, kv, updates, …). */
export const commandGroups: CommandGroup[] = [
  operatorCommands,
  tokenCommands,
  policyCommands,
  auditCommands,
  serverCommand,
  caCommands,
  ros2Commands,
  updatesCommands,
  agentCommands,
  deviceCommands,
  kvCommands,
  secretsCommands,
];

export function buildProgram(groups: CommandGroup[] = commandGroups): Command {
  const program = new Command("fleetroot")
    .description(
      "Fleetroot: the trust control plane for fleets of robots, drones and edge devices.\n" +
        "Talks to the server at FLEETROOT_ADDR with FLEETROOT_TOKEN; `fleetroot server --dev` starts one.",
    )
    .version("0.1.0", "-V, --version")
    .addOption(
      new Option("-a, --address <url>", "server address")
        .env("FLEETROOT_ADDR")
        .default("http://127.0.0.1:8200"),
    )
    // No short form: `-t` belongs to subcommands (`operator init -t 3` is the key threshold), and a program
    // option's short flag would take it from them wherever it appears on the line.
    .addOption(new Option("--token <token>", "token for the request").env("FLEETROOT_TOKEN"))
    .addOption(
      new Option("--ca-cert <file>", "CA bundle that signed the server's TLS certificate").env(
        "FLEETROOT_CACERT",
      ),
    )
    .addOption(
      new Option("-f, --format <format>", "output format")
        .choices(["table", "json", "pem", "der"])
        .env("FLEETROOT_FORMAT")
        .default("table"),
    )
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ sortSubcommands: true })
    .exitOverride();
  for (const g of groups) g(program);
  return program;
}

/** Runs the CLI; returns the exit code: 0 ok, 1 error, 2 usage. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const c of allCommands(program)) {
    c.exitOverride();
    unknownOptionsFirst(c);
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      // "commander.help" with a non-zero code: a command group given without a subcommand (a usage error).
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof FleetError) {
      process.stderr.write(`Error: ${e.message} (${e.code})\n`);
      return 1;
    }
    process.stderr.write(`Error: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

/**
 * Commander checks required options before unknown ones, so `--comon-name X` was reported as "required
 * option '--common-name' not specified". A misspelt option is the better error: this command reports an
 * unknown option (unless it allows them) before its required ones. Relies on commander 14's parse order
 * (parseOptions, then _checkForMissingMandatoryOptions, in _parseCommand); test/cli.test.ts holds it.
 */
function unknownOptionsFirst(c: Command): void {
  const cmd = c as unknown as {
    parseOptions(args: string[]): { operands: string[]; unknown: string[] };
    _checkForMissingMandatoryOptions(): void;
    unknownOption(flag: string): void;
    _lastUnknown?: string[];
  };
  const parseOptions = cmd.parseOptions.bind(cmd);
  const mandatory = cmd._checkForMissingMandatoryOptions.bind(cmd);
  if (typeof parseOptions !== "function" || typeof mandatory !== "function") return;
  cmd.parseOptions = (args) => {
    const parsed = parseOptions(args);
    cmd._lastUnknown = parsed.unknown;
    return parsed;
  };
  cmd._checkForMissingMandatoryOptions = () => {
    const first = cmd._lastUnknown?.[0];
    if (first !== undefined && first.startsWith("-") && c.commands.length === 0) cmd.unknownOption(first);
    mandatory();
  };
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}
