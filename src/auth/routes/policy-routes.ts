import { fail } from "../../errors/index.js";
import { topLevelEnvelope } from "../../server/envelope.js";
import {
  type Capability,
  type RouteContext,
  type RouteResult,
  type RouteSpec,
  empty,
  envelope,
  raw,
} from "../../server/types.js";
import { MAX_POLICY_BYTES } from "../policy/hcl.js";
import { type PolicyStore, isPolicyName } from "../policy/policy-store.js";
import { optString } from "./body.js";

const WRITE = ["POST", "PUT"] as const;

function nameOf(ctx: RouteContext): string {
  return ctx.params.name ?? fail("FR_VALIDATION", "the policy name is missing from the path");
}

/**
 * The legacy sys/policy endpoints answer with the fields both at the top level and under `data`
 * (older Vault clients read the top level), so they are sent raw in Vault's full envelope.
 */
function legacy(ctx: RouteContext, data: Record<string, unknown>): RouteResult {
  return raw(topLevelEnvelope(data, ctx.requestId));
}

async function readOr404(policies: PolicyStore, name: string): Promise<string> {
  const text = await policies.read(name);
  if (text === undefined) fail("FR_POLICY_NOT_FOUND", `no policy named "${name.slice(0, 128)}"`);
  return text;
}

/** sys/policy (legacy) and sys/policies/acl: list, read, write and delete ACL policies. */
export function policyRoutes(policies: PolicyStore): RouteSpec[] {
  const write = async (ctx: RouteContext) => {
    // Both endpoints take either field: `policy` (documented today) or `rules` (older clients).
    const text =
      optString(ctx.body, "policy", MAX_POLICY_BYTES) ?? optString(ctx.body, "rules", MAX_POLICY_BYTES);
    // As Vault, an empty `policy` is refused like a missing one rather than stored as a policy granting nothing.
    if (!text) fail("FR_VALIDATION", "policy is required: the policy text in HCL or JSON");
    await policies.write(nameOf(ctx), text);
    return empty();
  };
  // Vault asks `create` to write a policy that does not exist yet and `update` to change one that does.
  const writeCapability = async (ctx: RouteContext): Promise<Capability> => {
    if (ctx.grantedNow("create") && ctx.grantedNow("update")) return "update";
    // A malformed name is refused by the handler; `update` keeps that refusal behind the ACL as before.
    const name = ctx.params.name;
    if (name === undefined || !isPolicyName(name)) return "update";
    return (await policies.read(name)) === undefined ? "create" : "update";
  };
  const remove = async (ctx: RouteContext) => {
    await policies.delete(nameOf(ctx));
    return empty();
  };
  return [
    {
      method: ["GET", "LIST"],
      url: "/v1/sys/policy",
      auth: "token",
      handler: async (ctx) => {
        const names = await policies.list();
        return legacy(ctx, { keys: names, policies: names });
      },
    },
    {
      method: "GET",
      url: "/v1/sys/policy/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = nameOf(ctx).toLowerCase();
        return legacy(ctx, { name, rules: await readOr404(policies, name) });
      },
    },
    {
      method: WRITE,
      url: "/v1/sys/policy/:name",
      auth: "token",
      capability: writeCapability,
      handler: write,
    },
    { method: "DELETE", url: "/v1/sys/policy/:name", auth: "token", handler: remove },
    {
      method: "LIST",
      url: "/v1/sys/policies/acl",
      auth: "token",
      handler: async () => envelope({ keys: await policies.list() }),
    },
    {
      method: "GET",
      url: "/v1/sys/policies/acl/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = nameOf(ctx).toLowerCase();
        return envelope({ name, policy: await readOr404(policies, name) });
      },
    },
    {
      method: WRITE,
      url: "/v1/sys/policies/acl/:name",
      auth: "token",
      capability: writeCapability,
      handler: write,
    },
    { method: "DELETE", url: "/v1/sys/policies/acl/:name", auth: "token", handler: remove },
  ];
}
