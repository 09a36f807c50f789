import { fail } from "../../errors/index.js";
import { type RouteContext, type RouteSpec, empty, envelope } from "../../server/types.js";
import type { RequestAuth } from "../../server/types.js";
import type { Authorizer } from "../authorizer.js";
import type { TokenStore } from "../token/token-store.js";
import { optBool, optDuration, optInt, optList, optString, optStringMap, refuse, reqString } from "./body.js";
import { authBlock, lookupData } from "./format.js";

const WRITE = ["POST", "PUT"] as const;
const MAX_USES = 2 ** 31 - 1;

function caller(ctx: RouteContext): RequestAuth {
  return ctx.auth ?? fail("FR_MISSING_TOKEN");
}

/** Vault's sudo paths also need sudo on top of the operation's capability (checked by the server). */
async function requireSudo(authz: Authorizer, ctx: RouteContext): Promise<void> {
  const auth = caller(ctx);
  const path = ctx.path.replace(/\/+$/, "");
  if (!(await authz.allowed(auth, path, "sudo"))) {
    fail("FR_PERMISSION_DENIED", `${path} needs the sudo capability`);
  }
}

/** auth/token/*: create, look up, renew and revoke tokens, as Vault's token store does. */
export function tokenRoutes(tokens: TokenStore, authz: Authorizer): RouteSpec[] {
  const create = (orphanEndpoint: boolean) => async (ctx: RouteContext) => {
    const b = ctx.body;
    refuse(b, ["id", "role_name", "entity_alias", "bound_cidrs"]);
    const type = optString(b, "type");
    if (type !== undefined && type !== "service" && type !== "default") {
      fail(
        "FR_VALIDATION",
        `token type "${type.slice(0, 32)}" is not supported; Fleetroot issues service tokens`,
      );
    }
    const auth = caller(ctx);
    const sudo = auth.root || (await authz.allowed(auth, ctx.path, "sudo"));
    // Orphans come from create-orphan, or no_parent on create; both need root or sudo on the path used.
    const orphan = orphanEndpoint || optBool(b, "no_parent") === true;
    const ttl = optDuration(b, "ttl") ?? optDuration(b, "lease");
    const created = await tokens.create(
      auth,
      {
        ...opt("policies", optList(b, "policies")),
        ...opt("ttl", ttl),
        ...opt("explicitMaxTtl", optDuration(b, "explicit_max_ttl")),
        ...opt("period", optDuration(b, "period")),
        ...opt("numUses", optInt(b, "num_uses", MAX_USES)),
        ...opt("renewable", optBool(b, "renewable")),
        ...opt("noDefaultPolicy", optBool(b, "no_default_policy")),
        ...opt("meta", optStringMap(b, "meta")),
        ...opt("displayName", optString(b, "display_name")),
        orphan,
        path: ctx.path,
      },
      sudo,
    );
    ctx.auditData({ accessor: created.info.accessor });
    return envelope(null, { auth: authBlock(created), ...warn(created.warnings) });
  };

  const incrementOf = (ctx: RouteContext): number => optDuration(ctx.body, "increment") ?? 0;

  return [
    { method: WRITE, url: "/v1/auth/token/create", auth: "token", handler: create(false) },
    { method: WRITE, url: "/v1/auth/token/create-orphan", auth: "token", handler: create(true) },
    {
      method: WRITE,
      url: "/v1/auth/token/lookup",
      auth: "token",
      handler: async (ctx) => {
        const token = reqString(ctx.body, "token");
        return envelope(lookupData(await tokens.lookup(token), token));
      },
    },
    {
      // Vault's default policy grants read here; a POST is checked as update, as in Vault.
      method: ["GET", ...WRITE],
      url: "/v1/auth/token/lookup-self",
      auth: "token",
      handler: async (ctx) => envelope(lookupData(await tokens.lookupSelf(caller(ctx)), ctx.token ?? "")),
    },
    {
      method: WRITE,
      url: "/v1/auth/token/lookup-accessor",
      auth: "token",
      handler: async (ctx) =>
        envelope(lookupData(await tokens.lookupAccessor(reqString(ctx.body, "accessor")), "")),
    },
    {
      method: WRITE,
      url: "/v1/auth/token/renew",
      auth: "token",
      handler: async (ctx) => {
        const r = await tokens.renew(reqString(ctx.body, "token"), incrementOf(ctx));
        return envelope(null, { auth: authBlock(r), ...warn(r.warnings) });
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/renew-self",
      auth: "token",
      handler: async (ctx) => {
        const r = await tokens.renewByHash(caller(ctx).tokenHash, incrementOf(ctx));
        return envelope(null, { auth: authBlock({ ...r, token: ctx.token ?? "" }), ...warn(r.warnings) });
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/renew-accessor",
      auth: "token",
      handler: async (ctx) => {
        const r = await tokens.renewAccessor(reqString(ctx.body, "accessor"), incrementOf(ctx));
        return envelope(null, { auth: authBlock(r), ...warn(r.warnings) });
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/revoke",
      auth: "token",
      handler: async (ctx) => {
        await tokens.revoke(reqString(ctx.body, "token"));
        return empty();
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/revoke-self",
      auth: "token",
      handler: async (ctx) => {
        await tokens.revokeTree(caller(ctx).tokenHash);
        return empty();
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/revoke-orphan",
      auth: "token",
      handler: async (ctx) => {
        await requireSudo(authz, ctx);
        await tokens.revokeOrphan(reqString(ctx.body, "token"));
        return empty();
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/token/revoke-accessor",
      auth: "token",
      handler: async (ctx) => {
        await tokens.revokeAccessor(reqString(ctx.body, "accessor"));
        return empty();
      },
    },
    {
      method: "LIST",
      url: "/v1/auth/token/accessors",
      auth: "token",
      handler: async (ctx) => {
        await requireSudo(authz, ctx);
        return envelope({ keys: await tokens.listAccessors() });
      },
    },
  ];
}

/** Adds a key only when the value is set (exactOptionalPropertyTypes-friendly). */
function opt<K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, V>);
}

function warn(w: readonly string[]): { warnings?: string[] } {
  return w.length ? { warnings: [...w] } : {};
}
