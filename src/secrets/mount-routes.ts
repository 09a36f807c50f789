import { fail } from "../errors/index.js";
import { topLevelEnvelope } from "../server/envelope.js";
import { type RouteContext, type RouteSpec, empty, envelope, raw } from "../server/types.js";
import type { CoreServices } from "../server/main.js";
import { isObject, optDuration } from "./kv/body.js";
import type { Mount, MountTable } from "./mounts.js";

const WRITE = ["POST", "PUT"] as const;

/** sys/mounts (list, enable, read, disable, tune) and sys/internal/ui/mounts, shaped as Vault's. */
export function mountRoutes(core: CoreServices, mounts: MountTable): RouteSpec[] {
  return [
    {
      method: "GET",
      url: "/v1/sys/mounts",
      auth: "token",
      handler: async (ctx) => {
        const all: Record<string, unknown> = { "sys/": systemMount() };
        for (const m of await mounts.list()) all[m.path] = mountBody(m);
        // Vault repeats the table at the top level of the envelope for old clients.
        return raw(topLevelEnvelope(all, ctx.requestId));
      },
    },
    {
      method: ["GET", ...WRITE, "DELETE"],
      url: "/v1/sys/mounts/*",
      auth: "token",
      handler: async (ctx) => {
        const target = ctx.path.slice("sys/mounts/".length);
        if (target.endsWith("/tune") || target === "tune")
          return tune(ctx, mounts, target.replace(/\/?tune$/, ""));
        if (ctx.method === "GET") return envelope(mountBody(await mustGet(mounts, target)));
        if (ctx.method === "DELETE") {
          const gone = await mounts.disable(target);
          if (gone) await ctx.auditEvent("secrets.mount_disabled", { path: gone.path });
          return empty();
        }
        const b = ctx.body;
        const version = engineVersion(b.type, b.options);
        const description = optDescription(b.description);
        // As Vault, which refuses a body that does not decode into its mount fields: no silent defaults.
        if (b.config !== undefined && b.config !== null && !isObject(b.config))
          fail(
            "FR_VALIDATION",
            `config must be an object (such as {"max_lease_ttl": "1h"}), not ${typeName(b.config)}`,
          );
        const config = isObject(b.config) ? b.config : {};
        const m = await mounts.enable({
          path: target,
          version,
          ...(description !== undefined ? { description } : {}),
          config: leaseConfig(config),
        });
        await ctx.auditEvent("secrets.mount_enabled", { path: m.path, type: m.type, version: m.version });
        return empty();
      },
    },
    {
      method: "GET",
      url: "/v1/sys/internal/ui/mounts/*",
      auth: "none",
      handler: async (ctx) => {
        // As in Vault, any valid token may ask which engine serves a path (so CLIs pick the KV version).
        if (!ctx.token) fail("FR_MISSING_TOKEN");
        await core.tokens.lookup(ctx.token);
        const target = ctx.path.slice("sys/internal/ui/mounts/".length);
        const found = await mounts.resolve(target);
        if (!found) fail("FR_NOT_FOUND", `no secrets engine is mounted at ${target}`);
        return envelope({ ...mountBody(found.mount), path: found.mount.path });
      },
    },
  ];
}

async function tune(ctx: RouteContext, mounts: MountTable, path: string) {
  const m = await mustGet(mounts, path);
  if (ctx.method === "GET") return envelope(tuneBody(m));
  if (ctx.method !== "POST" && ctx.method !== "PUT")
    fail("FR_METHOD_NOT_ALLOWED", `${ctx.method} is not supported on tune`);
  const b = ctx.body;
  if (b.options !== undefined && b.options !== null) {
    const v = engineVersion("kv", b.options);
    if (isObject(b.options) && b.options.version !== undefined && v !== m.version)
      fail(
        "FR_VALIDATION",
        `changing a mount's KV version (v${m.version} → v${v}) is not supported; enable a new mount`,
      );
  }
  const description = optDescription(b.description);
  const lease = leaseConfig(b);
  await mounts.update(m.path, {
    ...(description !== undefined ? { description } : {}),
    ...lease,
  });
  await ctx.auditEvent("secrets.mount_tuned", { path: m.path });
  return empty();
}

async function mustGet(mounts: MountTable, path: string): Promise<Mount> {
  return (await mounts.get(path)) ?? fail("FR_NOT_FOUND", `no secrets engine is mounted at ${path}`);
}

/** The longest mount description accepted, in characters. */
const MAX_DESCRIPTION = 1024;

/** A mount's description: a string of at most 1 KiB or absent; another type is an error, as in Vault. */
function optDescription(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail("FR_VALIDATION", `description must be a string, not ${typeName(v)}`);
  if (v.length > MAX_DESCRIPTION)
    fail(
      "FR_VALIDATION",
      `description is ${v.length} characters long; at most ${MAX_DESCRIPTION} are accepted`,
    );
  return v;
}

const typeName = (v: unknown): string => (Array.isArray(v) ? "an array" : `a ${typeof v}`);

/** "kv" with options.version 1|2 (1 by default, as Vault), or "kv-v2". */
function engineVersion(type: unknown, options: unknown): 1 | 2 {
  if (typeof type !== "string")
    fail(
      "FR_VALIDATION",
      type === undefined || type === null
        ? 'type is required: "kv" (options.version 1 or 2) or "kv-v2"'
        : `type must be a string such as "kv", not ${typeName(type)}`,
    );
  if (type !== "kv" && type !== "kv-v2" && type !== "generic")
    fail(
      "FR_VALIDATION",
      `secrets engine type ${JSON.stringify(type)} is not supported; Fleetroot mounts "kv" (options.version 1 or 2)`,
    );
  if (options !== undefined && options !== null && !isObject(options))
    fail("FR_VALIDATION", `options must be an object such as {"version": "2"}, not ${typeName(options)}`);
  const v = isObject(options) ? options.version : undefined;
  if (v === undefined || v === null || v === "") return type === "kv-v2" ? 2 : 1;
  if (v === "1" || v === 1) return 1;
  if (v === "2" || v === 2) return 2;
  fail("FR_VALIDATION", `options.version must be "1" or "2", not ${JSON.stringify(v)}`);
}

function leaseConfig(c: Readonly<Record<string, unknown>>): {
  default_lease_ttl?: number;
  max_lease_ttl?: number;
} {
  const d = optDuration(c.default_lease_ttl, "default_lease_ttl");
  const x = optDuration(c.max_lease_ttl, "max_lease_ttl");
  return {
    ...(d !== undefined ? { default_lease_ttl: d } : {}),
    ...(x !== undefined ? { max_lease_ttl: x } : {}),
  };
}

export function mountBody(m: Mount): Record<string, unknown> {
  return {
    accessor: m.accessor,
    config: {
      default_lease_ttl: m.config.default_lease_ttl,
      force_no_cache: false,
      max_lease_ttl: m.config.max_lease_ttl,
    },
    description: m.description,
    external_entropy_access: false,
    local: false,
    options: { version: String(m.version) },
    plugin_version: "",
    running_plugin_version: "",
    running_sha256: "",
    seal_wrap: false,
    type: m.type,
    uuid: m.uuid,
  };
}

function tuneBody(m: Mount): Record<string, unknown> {
  return {
    default_lease_ttl: m.config.default_lease_ttl,
    description: m.description,
    force_no_cache: false,
    max_lease_ttl: m.config.max_lease_ttl,
    options: { version: String(m.version) },
  };
}

function systemMount(): Record<string, unknown> {
  return {
    accessor: "system",
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: "system endpoints used for control, policy and debugging",
    external_entropy_access: false,
    local: false,
    options: null,
    seal_wrap: true,
    type: "system",
    uuid: "system",
  };
}
