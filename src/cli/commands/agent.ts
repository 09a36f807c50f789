import { readFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { applyConfig, updateTarget } from "../../agent/index.js";
import { globals } from "../context.js";
import { agentEnrollCommands } from "./agent-enroll.js";
import { agentRos2Commands } from "./ros2.js";
import { CliError, print } from "../output.js";

const collect = (v: string, prev: string[]) => [...prev, v];

interface AgentOpts {
  repo: string;
  target: string;
  root: string;
  metadataDir?: string;
  layoutKey: string[];
}

function clientOptions(o: AgentOpts, fallbackDir: string) {
  const layoutKeys = o.layoutKey.map((f) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      throw new CliError(`cannot read layout key ${f}`);
    }
  });
  return {
    repoUrl: o.repo,
    trustedRoot: o.root,
    metadataDir: o.metadataDir ?? path.join(fallbackDir, ".fleetroot-tuf"),
    ...(layoutKeys.length ? { layoutKeys } : {}),
  };
}

export function agentCommands(program: Command): void {
  const agent = program
    .command("agent")
    .description(
      "the device side: enroll and keep its certificate fresh, fetch verified updates and configuration, obtain ROS 2 enclaves",
    );
  agentEnrollCommands(agent); // enroll and run: src/cli/commands/agent-enroll.ts
  agentRos2Commands(agent); // ros2-enclave: src/cli/commands/ros2.ts
  const common = (c: Command) =>
    c
      .requiredOption("--repo <url>", "repository URL, e.g. https://fleet.example/v1/updates/firmware")
      .requiredOption("--target <name>", "target path in the repository")
      .requiredOption("--root <file>", "trusted root metadata shipped at enrollment")
      .option("--metadata-dir <dir>", "where verified metadata persists between runs (rollback protection)")
      .option(
        "--layout-key <file>",
        "in-toto layout owner key, when targets carry layouts (repeatable)",
        collect,
        [],
      );

  common(agent.command("update"))
    .description("download a target through the TUF client workflow and write it into --out atomically")
    .requiredOption("--out <dir>", "directory to write the verified file into")
    .action(async (o: AgentOpts & { out: string }, cmd: Command) => {
      const file = await updateTarget(clientOptions(o, o.out), o.target, o.out);
      print({ target: o.target, written: file }, globals(cmd).format);
    });

  common(agent.command("config"))
    .description("apply a signed configuration target meant for this device (by id or label), atomically")
    .requiredOption("--out <file>", "configuration file to replace")
    .requiredOption("--device <id>", "this device's id")
    .option("--label <label>", "a label of this device (repeatable)", collect, [])
    .action(async (o: AgentOpts & { out: string; device: string; label: string[] }, cmd: Command) => {
      const r = await applyConfig(clientOptions(o, path.dirname(path.resolve(o.out))), o.target, o.out, {
        device: o.device,
        labels: o.label,
      });
      print({ target: o.target, ...r }, globals(cmd).format);
    });
}
