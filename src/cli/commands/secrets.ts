import { existsSync, renameSync, rmSync, rmdirSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { mkdirpSync, parseDuration } from "../../util/index.js";
import type { ApiClient } from "../client.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";
import { tableOrJsonOnly } from "./operator.js";

/** Token metadata key that marks a token as made by bootstrap for one service. */
const SERVICE_META = "fleetroot_service";
const TOKEN_FILE = "secrets-token.json";
const SERVICE_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

interface Options {
  services: string;
  out: string;
  mount: string;
  period: string;
  wrapTtl?: string;
  rotate?: boolean;
}

/** The per-service policy: its own subtree of the KV v2 mount, nothing else. */
export function servicePolicy(mount: string, svc: string): string {
  const m = mount.replace(/\/+$/, "");
  return [
    `# Made by fleetroot secrets bootstrap for the service "${svc}".`,
    `path "${m}/data/${svc}/*" { capabilities = ["create", "read", "update", "patch", "delete"] }`,
    `path "${m}/metadata/${svc}/*" { capabilities = ["read", "list", "delete"] }`,
    `path "${m}/delete/${svc}/*" { capabilities = ["update"] }`,
    `path "${m}/undelete/${svc}/*" { capabilities = ["update"] }`,
    `path "${m}/subkeys/${svc}/*" { capabilities = ["read"] }`,
    "",
  ].join("\n");
}

/** Bootstrap tokens on the server, by service (found by their metadata). */
async function existingTokens(c: ApiClient): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const res = await c.call("LIST", "auth/token/accessors", undefined, { allowStatus: [404] });
  const keys = res.status === 404 ? [] : ((dataOf(res.json()).keys ?? []) as string[]);
  for (const accessor of keys) {
    const r = await c.call("POST", "auth/token/lookup-accessor", { accessor }, { allowStatus: [400, 403] });
    if (r.status !== 200) continue; // expired meanwhile
    const meta = (dataOf(r.json()).meta ?? null) as Record<string, string> | null;
    const svc = meta?.[SERVICE_META];
    if (svc) out.set(svc, [...(out.get(svc) ?? []), accessor]);
  }
  return out;
}

/** Writes a file readable by its owner only, atomically (a reader never sees half a token file). */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** A duration flag (30s, 15m, 1h, 7d or seconds) that must be above zero; anything else is a usage error. */
function positiveDuration(v: string, flag: string): void {
  let seconds = 0;
  try {
    seconds = parseDuration(v, flag);
  } catch {
    throw new CliError(`${flag} must be a duration like 30s, 15m, 1h or 7d, not "${v}"`, 2);
  }
  if (seconds <= 0) throw new CliError(`${flag} must be longer than zero, not "${v}"`, 2);
}

export function secretsCommands(program: Command): void {
  const sec = program
    .command("secrets")
    .description("secrets-store operations beyond single keys (service bootstrap)")
    .hook("preAction", tableOrJsonOnly);

  sec
    .command("bootstrap")
    .description(
      "give each service its own policy over <mount>/data/<service>/* and a renewable periodic token in " +
        "DIR/<service>/secrets-token.json (mode 0600), optionally response-wrapped; revoke the tokens of " +
        "services no longer listed. Safe to re-run: live tokens are kept unless --rotate.",
    )
    .requiredOption("--services <list>", "comma-separated service names, e.g. core-data,core-command")
    .requiredOption("--out <dir>", "directory for the per-service token files")
    .option("--mount <path>", "the KV v2 mount holding the services' secrets", "secret")
    .option("--period <duration>", "token period: the token renews to this each time", "1h")
    .option("--wrap-ttl <duration>", "write response-wrapped tokens that unwrap once within this TTL")
    .option("--rotate", "replace live tokens with new ones (the old ones are revoked)")
    .action(async (o: Options, cmd: Command) => {
      const services = [
        ...new Set(
          o.services
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        ),
      ];
      // Unlisted services lose their tokens: an empty list (an unset variable) would revoke them all.
      if (services.length === 0)
        throw new CliError("--services names no service; give at least one, e.g. --services core-data", 2);
      for (const s of services)
        if (!SERVICE_RE.test(s))
          throw new CliError(`service name "${s}" must be lowercase letters, digits, _ . - (at most 63)`, 2);
      // Checked before anything changes: a bad duration found at the first token would leave policies behind.
      positiveDuration(o.period, "--period");
      if (o.wrapTtl !== undefined) positiveDuration(o.wrapTtl, "--wrap-ttl");
      const c = client(cmd);
      mkdirpSync(o.out, 0o700);
      const existing = await existingTokens(c);
      const report: Array<Record<string, string>> = [];

      for (const svc of services) {
        const policy = `service-${svc}`;
        await c.call("PUT", `sys/policies/acl/${policy}`, { policy: servicePolicy(o.mount, svc) });
        const dir = join(o.out, svc);
        const file = join(dir, TOKEN_FILE);
        const live = existing.get(svc) ?? [];
        if (live.length > 0 && existsSync(file) && !o.rotate) {
          report.push({ service: svc, action: "kept", policy });
          continue;
        }
        const res = await c.call(
          "POST",
          "auth/token/create-orphan",
          {
            policies: [policy],
            period: o.period,
            renewable: true,
            display_name: svc,
            meta: { [SERVICE_META]: svc },
          },
          o.wrapTtl ? { headers: { "x-vault-wrap-ttl": o.wrapTtl } } : {},
        );
        mkdirpSync(dir, 0o700);
        writePrivate(file, JSON.stringify(res.json(), null, 2) + "\n");
        // Only now that the new token is on disk do the old ones go.
        for (const accessor of live)
          await c.call("POST", "auth/token/revoke-accessor", { accessor }, { allowStatus: [400] });
        report.push({
          service: svc,
          action: live.length ? "rotated" : "created",
          policy,
          ...(o.wrapTtl ? { wrapped: o.wrapTtl } : {}),
        });
      }

      for (const [svc, accessors] of existing) {
        if (services.includes(svc)) continue;
        for (const accessor of accessors)
          await c.call("POST", "auth/token/revoke-accessor", { accessor }, { allowStatus: [400] });
        await c.call("DELETE", `sys/policies/acl/service-${svc}`, undefined, { allowStatus: [400, 404] });
        const dir = join(o.out, svc);
        rmSync(join(dir, TOKEN_FILE), { force: true });
        if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
        report.push({ service: svc, action: "revoked", policy: `service-${svc}` });
      }

      const g = globals(cmd);
      if (g.format === "json") return print(report, "json");
      for (const r of report)
        process.stdout.write(
          `${r.service}\t${r.action}\t${r.policy}${r.wrapped ? `\twrapped ${r.wrapped}` : ""}\n`,
        );
    });
}
