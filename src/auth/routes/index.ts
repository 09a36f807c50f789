import type { RouteSpec } from "../../server/types.js";
import type { Clock } from "../../util/index.js";
import { Authorizer } from "../authorizer.js";
import type { PolicyStore } from "../policy/policy-store.js";
import type { TokenStore } from "../token/token-store.js";
import { capabilityRoutes } from "./capability-routes.js";
import { policyRoutes } from "./policy-routes.js";
import { tokenRoutes } from "./token-routes.js";

/** Every route of the auth module: auth/token/*, sys/capabilities*, sys/policy*, sys/policies/acl*. */
export function authRoutes(deps: { tokens: TokenStore; policies: PolicyStore; clock: Clock }): RouteSpec[] {
  const authz = new Authorizer(deps);
  return [
    ...tokenRoutes(deps.tokens, authz),
    ...capabilityRoutes(deps.tokens, authz),
    ...policyRoutes(deps.policies),
  ];
}
