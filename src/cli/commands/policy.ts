import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";
import { tableOrJsonOnly } from "./operator.js";

export function policyCommands(program: Command): void {
  const pol = program
    .command("policy")
    .description("manage ACL policies (Vault HCL or JSON syntax)")
    .hook("preAction", tableOrJsonOnly);

  pol
    .command("write")
    .description("create or replace a policy from a file (- for stdin)")
    .argument("<name>", "policy name")
    .argument("<file>", "policy file in HCL or JSON, or - for stdin")
    .action(async (name: string, file: string, _o: unknown, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(file === "-" ? 0 : file, "utf8");
      } catch (e) {
        throw new CliError(
          `cannot read policy file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      await client(cmd).json("PUT", `sys/policies/acl/${encodeURIComponent(name)}`, { policy: text });
      process.stdout.write(`Success! Uploaded policy: ${name}\n`);
    });

  pol
    .command("read")
    .description("print a policy")
    .argument("<name>", "policy name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await client(cmd).json("GET", `sys/policies/acl/${encodeURIComponent(name)}`);
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      // Print the text as stored: a policy file already ends in a newline, so add one only when it does not.
      const text = String(dataOf(res).policy ?? "");
      process.stdout.write(text.endsWith("\n") ? text : text + "\n");
    });

  pol
    .command("list")
    .description("list policy names")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd).json("LIST", "sys/policies/acl");
      const g = globals(cmd);
      print(g.format === "json" ? res : (dataOf(res).keys ?? []), g.format);
    });

  pol
    .command("delete")
    .description("delete a policy")
    .argument("<name>", "policy name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await client(cmd).json("DELETE", `sys/policies/acl/${encodeURIComponent(name)}`);
      process.stdout.write(`Success! Deleted policy: ${name}\n`);
    });
}
