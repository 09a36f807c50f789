import type { Capability, RequestAuth } from "../server/types.js";
import type { Clock } from "../util/index.js";
import type { ParamInput } from "./policy/acl.js";
import type { PolicyStore } from "./policy/policy-store.js";
import type { TokenStore } from "./token/token-store.js";

/**
 * What the server asks for every request: who is this token, and may it do this here.
 * Deny by default; a root token may do everything.
 */
export class Authorizer {
  private readonly tokens: TokenStore;
  private readonly policies: PolicyStore;

  /** `clock` is accepted for symmetry with the other auth services; time is read by the stores. */
  constructor(deps: { tokens: TokenStore; policies: PolicyStore; clock?: Clock }) {
    this.tokens = deps.tokens;
    this.policies = deps.policies;
  }

  /** Checks the presented token (counting one use). FR_MISSING_TOKEN / FR_TOKEN_INVALID: "permission denied". */
  authenticate(token: string | undefined): Promise<RequestAuth> {
    return this.tokens.authenticate(token);
  }

  /** The token's auth if it was checked recently, without waiting (see TokenStore.cachedAuth). */
  cachedAuth(token: string): RequestAuth | undefined {
    return this.tokens.cachedAuth(token);
  }

  /** allowed(), answered without waiting when the ACL for the token's policies is cached; else undefined. */
  allowedNow(
    auth: RequestAuth,
    path: string,
    capability: Capability,
    params?: ParamInput,
  ): boolean | undefined {
    if (auth.root) return true;
    return this.policies.cachedAcl(auth.policies)?.allows(path, capability, params);
  }

  /**
   * Whether `auth` holds `capability` on `path`. Pass the request's parameters (the body; the query for
   * reads) so allowed/denied/required_parameters in policies are enforced; without them the request is
   * checked as if it carried no parameters.
   */
  async allowed(
    auth: RequestAuth,
    path: string,
    capability: Capability,
    params?: ParamInput,
  ): Promise<boolean> {
    if (auth.root) return true;
    return (await this.policies.acl(auth.policies)).allows(path, capability, params);
  }

  /** The capabilities on `path`, as sys/capabilities reports them: ["root"], ["deny"] or a sorted list. */
  async capabilities(auth: Pick<RequestAuth, "policies" | "root">, path: string): Promise<string[]> {
    if (auth.root) return ["root"];
    return (await this.policies.acl(auth.policies)).capabilities(path);
  }
}
