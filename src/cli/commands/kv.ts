import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";
import { tableOrJsonOnly } from "./operator.js";

interface Target {
  /** The API path for the operation, e.g. "secret/data/app/db". */
  api: (op: string) => string;
  version: 1 | 2;
  mount: string;
  path: string;
}

/**
 * Finds the mount and KV version serving a path, as the vault CLI does (sys/internal/ui/mounts), so
 * `kv get secret/app/db` works without naming the data/ segment.
 */
async function resolve(c: ApiClient, arg: string, mountOpt: string | undefined): Promise<Target> {
  const clean = arg.replace(/^\/+/, "");
  const probe = mountOpt ? `${mountOpt.replace(/\/+$/, "")}/${clean}` : clean;
  const res = await c.call("GET", `sys/internal/ui/mounts/${probe}`, undefined, { allowStatus: [404] });
  if (res.status === 404)
    throw new CliError(`no KV secrets engine is mounted at ${probe}; check the path or --mount`);
  const d = dataOf(res.json());
  const mount = String(d.path ?? "");
  const version = String((d.options as Record<string, unknown> | null)?.version ?? "1") === "2" ? 2 : 1;
  const path = probe.slice(mount.length);
  return {
    mount,
    path,
    version,
    api: (op) => (version === 2 ? `${mount}${op}/${path}` : `${mount}${path}`),
  };
}

/** Refuses a KV v2 operation on a KV v1 path, where the same API path would read or replace the secret itself. */
function needV2(t: Target, what: string): void {
  if (t.version !== 2) throw new CliError(`${what} needs a KV v2 mount; ${t.mount} is KV v1`, 2);
}

/** key=value pairs (value @file reads a file; a single "-" reads a JSON object from stdin). */
function parsePairs(pairs: string[]): Record<string, unknown> {
  if (pairs.length === 1 && pairs[0] === "-") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(0, "utf8"));
    } catch (e) {
      // One line on stderr: JSON.parse quotes the input, newlines included.
      throw new CliError(`stdin is not valid JSON: ${(e as Error).message.replace(/\s+/g, " ")}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new CliError("stdin must hold a JSON object", 2);
    return parsed as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new CliError(`"${p}" is not key=value`, 2);
    const v = p.slice(i + 1);
    out[p.slice(0, i)] = v.startsWith("@") ? readValueFile(p.slice(0, i), v.slice(1)) : v;
  }
  if (Object.keys(out).length === 0) throw new CliError("give at least one key=value pair", 2);
  return out;
}

function readValueFile(key: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CliError(`cannot read ${file} for the value of "${key}": ${why}`);
  }
}

function intOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CliError(`--${name} must be a whole number`, 2);
  return Number(v);
}

function versionsOpt(v: string | undefined): number[] {
  if (!v) throw new CliError("--versions is required, e.g. --versions 1,2", 2);
  return v.split(",").map((s) => intOpt(s.trim(), "versions")!);
}

const mountOption = (c: Command) => c.option("-m, --mount <path>", "the KV mount (else taken from the path)");

export function kvCommands(program: Command): void {
  const kv = program
    .command("kv")
    .description("read and write KV secrets (v1 and v2 mounts, detected per path like the vault CLI)")
    .hook("preAction", tableOrJsonOnly);

  mountOption(
    kv
      .command("get")
      .description("read a secret (the latest version, or --ver N on KV v2)")
      .argument("<path>", "secret path, e.g. secret/app/db (or app/db with --mount secret)")
      .option("-v, --ver <n>", "version to read (Vault's -version)")
      .option("--field <name>", "print only this field's value"),
  ).action(async (path: string, o: { mount?: string; ver?: string; field?: string }, cmd: Command) => {
    const c = client(cmd);
    const t = await resolve(c, path, o.mount);
    const ver = intOpt(o.ver, "ver");
    if (ver !== undefined) needV2(t, "--ver");
    const res = await c.call(
      "GET",
      t.api("data") + (t.version === 2 && ver ? `?version=${ver}` : ""),
      undefined,
      {
        allowStatus: [404],
      },
    );
    const body = res.json();
    if (res.status === 404) {
      const md = (dataOf(body).metadata ?? null) as Record<string, unknown> | null;
      if (md)
        throw new CliError(
          `version ${String(md.version)} of ${path} is ${md.destroyed ? "destroyed" : "deleted"}`,
        );
      throw new CliError(`no value found at ${t.api("data")}`);
    }
    const g = globals(cmd);
    if (g.format === "json") return print(body, "json");
    const data = (t.version === 2 ? dataOf(body).data : dataOf(body)) as Record<string, unknown>;
    if (o.field !== undefined) {
      if (!(o.field in data)) throw new CliError(`field "${o.field}" is not present in ${path}`);
      const v = data[o.field];
      process.stdout.write((typeof v === "string" ? v : JSON.stringify(v)) + "\n");
      return;
    }
    if (t.version === 2) {
      process.stdout.write("== Secret Metadata ==\n");
      print(dataOf(body).metadata, "table");
      process.stdout.write("\n== Data ==\n");
    }
    print(data, "table");
  });

  for (const [name, method, desc] of [
    ["put", "POST", "write a new version of a secret from key=value pairs (or - for a JSON object on stdin)"],
    ["patch", "PATCH", "change some keys of the latest version (KV v2), keeping the others"],
  ] as const) {
    mountOption(
      kv
        .command(name)
        .description(desc)
        .argument("<path>", "secret path")
        .argument("<pairs...>", "key=value (value @file reads a file)")
        .option("-c, --cas <n>", "check-and-set: write only if the current version is n (0: only if new)"),
    ).action(async (path: string, pairs: string[], o: { mount?: string; cas?: string }, cmd: Command) => {
      const c = client(cmd);
      const t = await resolve(c, path, o.mount);
      const data = parsePairs(pairs);
      const cas = intOpt(o.cas, "cas");
      if (t.version === 1 && (name === "patch" || cas !== undefined))
        throw new CliError(
          `${name === "patch" ? "patch" : "--cas"} needs a KV v2 mount; ${t.mount} is KV v1`,
          2,
        );
      const body = t.version === 2 ? { data, ...(cas !== undefined ? { options: { cas } } : {}) } : data;
      const res = await c.call(method, t.api("data"), body, {
        ...(method === "PATCH" ? { headers: { "content-type": "application/merge-patch+json" } } : {}),
      });
      const g = globals(cmd);
      if (res.status === 204)
        return void process.stdout.write(`Success! Data written to: ${t.api("data")}\n`);
      print(g.format === "json" ? res.json() : dataOf(res.json()), g.format);
    });
  }

  mountOption(
    kv
      .command("list")
      .description("list the keys and folders under a path")
      .argument("[path]", "folder, e.g. secret/app (optional with --mount: the mount's top level)", ""),
  ).action(async (path: string, o: { mount?: string }, cmd: Command) => {
    if (!path.replace(/^\/+/, "") && !o.mount)
      throw new CliError("name the folder to list, e.g. kv list secret/app (or kv list --mount secret)", 2);
    const c = client(cmd);
    const t = await resolve(c, path, o.mount);
    const res = await c.call("LIST", t.api("metadata").replace(/\/?$/, "/"), undefined, {
      allowStatus: [404],
    });
    if (res.status === 404) throw new CliError(`no keys under ${path}`);
    const g = globals(cmd);
    print(g.format === "json" ? res.json() : (dataOf(res.json()).keys ?? []), g.format);
  });

  mountOption(
    kv
      .command("delete")
      .description("soft-delete the latest version, or --versions on KV v2 (undelete can restore them)")
      .argument("<path>", "secret path")
      .option("--versions <list>", "versions to delete, e.g. 1,2"),
  ).action(async (path: string, o: { mount?: string; versions?: string }, cmd: Command) => {
    const c = client(cmd);
    const t = await resolve(c, path, o.mount);
    if (o.versions) needV2(t, "--versions");
    if (o.versions) await c.call("POST", t.api("delete"), { versions: versionsOpt(o.versions) });
    else await c.call("DELETE", t.api("data"));
    process.stdout.write(`Success! Data deleted (if it existed) at: ${path}\n`);
  });

  for (const [name, desc] of [
    ["undelete", "restore soft-deleted versions (KV v2)"],
    ["destroy", "permanently remove the data of versions (KV v2); this cannot be undone"],
  ] as const) {
    mountOption(
      kv
        .command(name)
        .description(desc)
        .argument("<path>", "secret path")
        .requiredOption("--versions <list>", "versions, e.g. 1,2"),
    ).action(async (path: string, o: { mount?: string; versions?: string }, cmd: Command) => {
      const c = client(cmd);
      const t = await resolve(c, path, o.mount);
      needV2(t, name);
      await c.call(name === "destroy" ? "PUT" : "POST", t.api(name), { versions: versionsOpt(o.versions) });
      process.stdout.write(
        `Success! ${name === "destroy" ? "Destroyed" : "Undeleted"} versions ${o.versions} of ${path}\n`,
      );
    });
  }

  const md = kv
    .command("metadata")
    .description("read, change and delete a KV v2 secret's metadata and all its versions");
  mountOption(
    md
      .command("get")
      .description("show versions, max_versions, cas_required, custom metadata")
      .argument("<path>"),
  ).action(async (path: string, o: { mount?: string }, cmd: Command) => {
    const c = client(cmd);
    const t = await resolve(c, path, o.mount);
    needV2(t, "kv metadata");
    const res = await c.json("GET", t.api("metadata"));
    const g = globals(cmd);
    print(g.format === "json" ? res : dataOf(res), g.format);
  });
  mountOption(
    md
      .command("put")
      .description("set max_versions, cas_required, delete_version_after or custom metadata")
      // Optional only so that `--cas-required secret/app/db` (a bare flag, as Vault's) keeps its path.
      .argument("[path]", "secret path")
      .option("--max-versions <n>", "versions to keep (0: the mount's setting)")
      // Vault's -cas-required is a boolean flag: given alone it means true; =false turns it off.
      .option("--cas-required [bool]", "require check-and-set on every write (true when given alone)")
      .option("--delete-version-after <duration>", "soft-delete versions this long after they are written")
      .option(
        "--custom-metadata <key=value>",
        "custom metadata (repeatable; replaces the set)",
        (v: string, p: string[]) => [...p, v],
        [],
      ),
  ).action(
    async (
      pathArg: string | undefined,
      o: {
        mount?: string;
        maxVersions?: string;
        casRequired?: string | boolean;
        deleteVersionAfter?: string;
        customMetadata: string[];
      },
      cmd: Command,
    ) => {
      let path = pathArg;
      let cas = o.casRequired;
      // `--cas-required secret/app/db`: the optional value took the path; it was the flag alone.
      if (path === undefined && typeof cas === "string" && cas !== "true" && cas !== "false") {
        path = cas;
        cas = true;
      }
      if (path === undefined) throw new CliError("missing required argument 'path'", 2);
      if (cas !== undefined && cas !== true && cas !== "true" && cas !== "false")
        throw new CliError(
          `--cas-required must be true or false, not "${String(cas)}" (or give the flag alone for true)`,
          2,
        );
      const c = client(cmd);
      const t = await resolve(c, path, o.mount);
      needV2(t, "kv metadata");
      const body: Record<string, unknown> = {};
      if (o.maxVersions !== undefined) body.max_versions = intOpt(o.maxVersions, "max-versions");
      if (cas !== undefined) body.cas_required = cas !== "false";
      if (o.deleteVersionAfter !== undefined) body.delete_version_after = o.deleteVersionAfter;
      if (o.customMetadata.length) body.custom_metadata = parsePairs(o.customMetadata);
      await c.call("POST", t.api("metadata"), body);
      process.stdout.write(`Success! Metadata written to: ${t.api("metadata")}\n`);
    },
  );
  mountOption(
    md.command("delete").description("delete the metadata and every version").argument("<path>"),
  ).action(async (path: string, o: { mount?: string }, cmd: Command) => {
    const c = client(cmd);
    const t = await resolve(c, path, o.mount);
    needV2(t, "kv metadata");
    await c.call("DELETE", t.api("metadata"));
    process.stdout.write(`Success! Data deleted (if it existed) at: ${t.api("metadata")}\n`);
  });
}
