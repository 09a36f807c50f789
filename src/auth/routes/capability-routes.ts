import { fail } from "../../errors/index.js";
import { type RouteContext, type RouteSpec, envelope } from "../../server/types.js";
import type { Authorizer } from "../authorizer.js";
import type { TokenStore } from "../token/token-store.js";
import { optList, optString, reqString } from "./body.js";

const WRITE = ["POST", "PUT"] as const;

/** `paths` (a list or comma-separated) or the older single `path`. */
function pathsOf(ctx: RouteContext): string[] {
  const paths = optList(ctx.body, "paths") ?? [];
  const one = optString(ctx.body, "path");
  if (one) paths.push(one);
  if (paths.length === 0) fail("FR_VALIDATION", "paths is required");
  return paths;
}

/**
 * Vault's answer shape: each path as a key, plus `capabilities` for backwards compatibility when one path
 * was asked about.
 */
async function answer(
  authz: Authorizer,
  who: { policies: readonly string[]; root: boolean },
  paths: string[],
) {
  const data: Record<string, string[]> = {};
  for (const p of paths) data[p] = await authz.capabilities(who, p);
  if (paths.length === 1) data.capabilities = data[paths[0]!]!;
  return envelope(data);
}

/** sys/capabilities, sys/capabilities-self and sys/capabilities-accessor. */
export function capabilityRoutes(tokens: TokenStore, authz: Authorizer): RouteSpec[] {
  return [
    {
      method: WRITE,
      url: "/v1/sys/capabilities-self",
      auth: "token",
      handler: async (ctx) => answer(authz, ctx.auth ?? fail("FR_MISSING_TOKEN"), pathsOf(ctx)),
    },
    {
      method: WRITE,
      url: "/v1/sys/capabilities",
      auth: "token",
      handler: async (ctx) => {
        const info = await tokens.lookup(reqString(ctx.body, "token"));
        return answer(authz, { policies: info.policies, root: info.policies.includes("root") }, pathsOf(ctx));
      },
    },
    {
      method: WRITE,
      url: "/v1/sys/capabilities-accessor",
      auth: "token",
      handler: async (ctx) => {
        const info = await tokens.lookupAccessor(reqString(ctx.body, "accessor"));
        return answer(authz, { policies: info.policies, root: info.policies.includes("root") }, pathsOf(ctx));
      },
    },
  ];
}
