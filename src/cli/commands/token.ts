import type { Command } from "commander";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";
import { tableOrJsonOnly } from "./operator.js";

const collect = (v: string, prev: string[]) => [...prev, v];

/** A flag's value that must be one of a few words; anything else is a usage error, never a silent default. */
function boolFlag(v: string, flag: string): boolean {
  if (v === "true" || v === "false") return v === "true";
  throw new CliError(`${flag} must be true or false, not "${v}"`, 2);
}

export function tokenCommands(program: Command): void {
  const tok = program
    .command("token")
    .description("create, inspect, renew and revoke tokens")
    .hook("preAction", tableOrJsonOnly);

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
        if (i <= 0) throw new CliError(`--metadata "${kv}" is not key=value`, 2);
        meta[kv.slice(0, i)] = kv.slice(i + 1);
      }
      const body: Record<string, unknown> = {
        policies: o.policy,
        renewable: boolFlag(o.renewable as string, "--renewable"),
        no_default_policy: o.defaultPolicy === false,
        meta,
      };
      if (o.ttl) body.ttl = o.ttl;
      if (o.explicitMaxTtl) body.explicit_max_ttl = o.explicitMaxTtl;
      if (o.period) body.period = o.period;
      if (o.useLimit !== undefined) {
        // A typo here must not become an unlimited token (JSON turns NaN into null, which means "no limit").
        if (!/^\d+$/.test(o.useLimit as string))
          throw new CliError(`--use-limit must be a whole number, not "${o.useLimit as string}"`, 2);
        body.num_uses = Number(o.useLimit);
      }
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
      if (o.accessor && !token) throw new CliError("--accessor needs the accessor to look up", 2);
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
    .description("revoke a token and all its children (the current token only with --self)")
    .argument("[token]", "token (or with --accessor, accessor) to revoke; not with --self")
    .option("--self", "revoke the current token")
    .option("--accessor", "treat the argument as an accessor")
    .option("--orphan", "revoke only this token; its children become orphans")
    .action(
      async (
        token: string | undefined,
        o: { self?: boolean; accessor?: boolean; orphan?: boolean },
        cmd: Command,
      ) => {
        // Revoking the caller's own token takes --self: a missing argument (an empty variable) must not.
        if (o.self && token) throw new CliError("give either a token or --self, not both", 2);
        if (!o.self && !token)
          throw new CliError("name the token to revoke (or its accessor with --accessor), or pass --self", 2);
        if (o.self && (o.accessor || o.orphan))
          throw new CliError("--self revokes the current token; it takes no --accessor or --orphan", 2);
        // Revoking by accessor takes the whole tree: silently dropping --orphan would revoke the children the
        // operator meant to keep.
        if (o.accessor && o.orphan)
          throw new CliError(
            "--orphan cannot be combined with --accessor: give the token itself to revoke only it",
            2,
          );
        const c = client(cmd);
        if (o.self) await c.json("POST", "auth/token/revoke-self");
        else if (o.accessor) await c.json("POST", "auth/token/revoke-accessor", { accessor: token });
        else if (o.orphan) await c.json("POST", "auth/token/revoke-orphan", { token });
        else await c.json("POST", "auth/token/revoke", { token });
        process.stdout.write("Success! Revoked token (if it existed)\n");
      },
    );
}
