import { fail } from "../errors/index.js";
import type { RouteSpec } from "../server/types.js";
import type { Kv1Store } from "./kv/kv1-store.js";
import type { Kv2Store } from "./kv/kv2-store.js";
import { kv1 } from "./kv/v1-engine.js";
import { kv2 } from "./kv/v2-engine.js";
import type { MountTable } from "./mounts.js";

/**
 * One catch-all route serves every mount, since mounts come and go at run time. Fastify prefers static
 * and parametric routes over this wildcard, so sys/, auth/ and the other modules' routes still win; a
 * path under no mount gets Vault's 404 "no handler for route".
 */
export function engineRoute(deps: { mounts: MountTable; kv2: Kv2Store; kv1: Kv1Store }): RouteSpec {
  return {
    method: ["GET", "POST", "PUT", "PATCH", "DELETE", "LIST"],
    url: "/v1/*",
    auth: "token",
    // Vault asks `create` to write a key that does not exist yet and `update` to change one that does.
    capability: async (ctx) => {
      const byMethod = { GET: "read", HEAD: "read", LIST: "list", DELETE: "delete", PATCH: "patch" } as const;
      if (ctx.method !== "POST" && ctx.method !== "PUT") return byMethod[ctx.method];
      // A token that may do both needs no lookup to tell which one this write is.
      if (ctx.grantedNow("create") && ctx.grantedNow("update")) return "update";
      const found = await deps.mounts.resolve(ctx.path);
      if (!found) return "update";
      if (found.mount.version === 1) {
        return (await deps.kv1.get(found.mount, found.rest)) === undefined ? "create" : "update";
      }
      // data/ and metadata/ have Vault's existence check (the key's metadata); config, delete/… do not.
      const sub = /^(?:data|metadata)\//.exec(found.rest)?.[0];
      if (!sub) return "update";
      return (await deps.kv2.exists(found.mount, found.rest.slice(sub.length))) ? "update" : "create";
    },
    handler: async (ctx) => {
      const found = await deps.mounts.resolve(ctx.path);
      if (!found)
        fail("FR_NOT_FOUND", `no handler for route "${ctx.path}": no secrets engine is mounted there`);
      return found.mount.version === 2
        ? kv2(ctx, found.mount, found.rest, { kv: deps.kv2, mounts: deps.mounts })
        : kv1(ctx, found.mount, found.rest, deps.kv1);
    },
  };
}
