import type { Command } from "commander";
import { client, dataOf, globals } from "../context.js";
import { print } from "../output.js";

const collect = (v: string, prev: string[]) => [...prev, v];

export function tokenCommands(program: Command): void {
  const tok = program.command("token").description("create, inspect, renew and revoke tokens");

  tok
    .command("create")
    .description("create a child token of the current token (or an orphan)")
    .option("-p, --policy <name>", "policy to attach (repeatable)", collect, [])
    .option("--ttl <duration>", "initial TTL, e.g. 1h")
    .option("--explicit-max-ttl <duration>", "hard limit the token can never be renewed past")
    .option("--period <duration>", "make a periodic token that renews to this period")
    .option("--use-limit <n>", "number of uses before the token is revoked")
    .option("--orphan", "create a token with no parent (needs sudo)")
    .option("--no-default-policy", "do not attach the default policy")
    .option("--renewable <bool>", "whether the token can be renewed", "true")
    .option("--display-name <name>", "display name")
    .option("-m, --metadata <key=value>", "metadata (repeatable)", collect, [])
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const meta: Record<string, string> = {};
      for (const kv of o.metadata as string[]) {
        const i = kv.indexOf("=");
        if (i > 0) meta[kv.slice(0, i)] = kv.slice(i + 1);
      }
      const body: Record<string, unknown> = {
        policies: o.policy,
        renewable: o.renewable !== "false",
        no_default_policy: o.defaultPolicy === false,
        meta,
      };
      if (o.ttl) body.ttl = o.ttl;
      if (o.explicitMaxTtl) body.explicit_max_ttl = o.explicitMaxTtl;
      if (o.period) body.period = o.period;
      if (o.useLimit) body.num_uses = Number(o.useLimit);
      if (o.displayName) body.display_name = o.displayName;
      const path = o.orphan ? "auth/token/create-orphan" : "auth/token/create";
      const res = await client(cmd).json("POST", path, body);
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      const a = (res.auth ?? {}) as Record<string, unknown>;
      print(
        {
          token: a.client_token,
          token_accessor: a.accessor,
          token_duration: a.lease_duration,
          token_renewable: a.renewable,
          token_policies: a.token_policies ?? a.policies,
        },
        "table",
      );
    });

  tok
    .command("lookup")
    .description("show a token's properties (the current token when none is given)")
    .argument("[token]", "token to look up")
    .option("--accessor", "treat the argument as an accessor")
    .action(async (token: string | undefined, o: { accessor?: boolean }, cmd: Command) => {
      const c = client(cmd);
      const res = !token
        ? await c.json("GET", "auth/token/lookup-self")
        : o.accessor
          ? await c.json("POST", "auth/token/lookup-accessor", { accessor: token })
          : await c.json("POST", "auth/token/lookup", { token });
      const g = globals(cmd);
      print(g.format === "json" ? res : dataOf(res), g.format);
    });

  tok
    .command("renew")
    .description("renew a token's lease (the current token when none is given)")
    .argument("[token]", "token to renew")
    .option("-i, --increment <duration>", "requested increment")
    .action(async (token: string | undefined, o: { increment?: string }, cmd: Command) => {
      const body: Record<string, unknown> = o.increment ? { increment: o.increment } : {};
      const c = client(cmd);
      const res = token
        ? await c.json("POST", "auth/token/renew", { ...body, token })
        : await c.json("POST", "auth/token/renew-self", body);
      const g = globals(cmd);
      print(g.format === "json" ? res : res.auth, g.format);
    });

  tok
    .command("revoke")
    .description("revoke a token and all its children (the current token with -self)")
    .argument("[token]", "token to revoke")
    .option("--self", "revoke the current token")
    .option("--accessor", "treat the argument as an accessor")
    .option("--orphan", "revoke only this token; its children become orphans")
    .action(
      async (
        token: string | undefined,
        o: { self?: boolean; accessor?: boolean; orphan?: boolean },
        cmd: Command,
      ) => {
        const c = client(cmd);
        if (o.self || !token) await c.json("POST", "auth/token/revoke-self");
        else if (o.accessor) await c.json("POST", "auth/token/revoke-accessor", { accessor: token });
        else if (o.orphan) await c.json("POST", "auth/token/revoke-orphan", { token });
        else await c.json("POST", "auth/token/revoke", { token });
        process.stdout.write("Success! Revoked token (if it existed)\n");
      },
    );
}
