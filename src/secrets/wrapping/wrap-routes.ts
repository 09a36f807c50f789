import { fail, toFleetError } from "../../errors/index.js";
import { type RouteContext, type RouteSpec, envelope } from "../../server/types.js";
import type { CoreServices } from "../../server/main.js";
import { checkDepth } from "../kv/body.js";
import { WRAP_TOKEN_PREFIX, type WrapStore } from "./wrap-store.js";

const WRITE = ["POST", "PUT"] as const;

/**
 * sys/wrapping/{wrap,unwrap,lookup,rewrap}. unwrap, lookup and rewrap take the wrapping token from the
 * body (`token`) or from X-Vault-Token; they need no other token, as in Vault, because holding the
 * single-use wrapping token is the authority. A caller token sent next to a body token must be valid.
 */
export function wrappingRoutes(core: CoreServices, wraps: WrapStore): RouteSpec[] {
  return [
    {
      method: WRITE,
      url: "/v1/sys/wrapping/wrap",
      auth: "token",
      handler: async (ctx) => {
        if (!ctx.req.headers["x-vault-wrap-ttl"])
          fail("FR_VALIDATION", "sys/wrapping/wrap needs the X-Vault-Wrap-TTL header, e.g. 5m");
        if (Object.keys(ctx.body).length === 0) fail("FR_VALIDATION", "nothing to wrap: send a JSON object");
        checkDepth(ctx.body);
        // The pipeline wraps this envelope (X-Vault-Wrap-TTL) through the module's wrapper.
        return envelope(ctx.body);
      },
    },
    {
      method: WRITE,
      url: "/v1/sys/wrapping/unwrap",
      auth: "none",
      rateLimit: "login",
      handler: async (ctx) => {
        const token = await wrappingToken(core, ctx);
        try {
          const { response } = await wraps.unwrap(token);
          await ctx.auditEvent("wrapping.unwrap", { ok: true });
          return envelope(response.data ?? null, {
            ...(response.auth ? { auth: response.auth } : {}),
            ...(response.warnings?.length ? { warnings: response.warnings } : {}),
            ...(response.leaseDuration ? { leaseDuration: response.leaseDuration } : {}),
            ...(response.renewable ? { renewable: response.renewable } : {}),
          });
        } catch (e) {
          await ctx.auditEvent("wrapping.unwrap_refused", { code: toFleetError(e).code });
          throw e;
        }
      },
    },
    {
      method: [...WRITE, "GET"],
      url: "/v1/sys/wrapping/lookup",
      auth: "none",
      rateLimit: "login",
      handler: async (ctx) => envelope(await wraps.lookup(await wrappingToken(core, ctx))),
    },
    {
      method: WRITE,
      url: "/v1/sys/wrapping/rewrap",
      auth: "none",
      rateLimit: "login",
      handler: async (ctx) => {
        const token = await wrappingToken(core, ctx);
        try {
          const info = await wraps.rewrap(token);
          await ctx.auditEvent("wrapping.rewrap", { creation_path: info.creation_path });
          return { kind: "envelope", wrapInfo: info };
        } catch (e) {
          await ctx.auditEvent("wrapping.rewrap_refused", { code: toFleetError(e).code });
          throw e;
        }
      },
    },
  ];
}

/** The wrapping token of the request: `token` in the body, else X-Vault-Token. */
async function wrappingToken(core: CoreServices, ctx: RouteContext): Promise<string> {
  const fromBody = ctx.body.token ?? ctx.query.token;
  if (fromBody !== undefined && typeof fromBody !== "string") fail("FR_VALIDATION", "token must be a string");
  if (fromBody) {
    // A caller token next to the body token must be a live token allowed on this path (Vault checks it).
    if (ctx.token && !ctx.token.startsWith(WRAP_TOKEN_PREFIX) && ctx.token !== fromBody) {
      const auth = await core.tokens.authenticate(ctx.token);
      if (!auth.root && !(await core.policies.acl(auth.policies)).allows(ctx.path, "update"))
        fail("FR_PERMISSION_DENIED", `no policy of the caller's token grants update on ${ctx.path}`);
    }
    return fromBody;
  }
  if (ctx.token) return ctx.token;
  fail("FR_WRAPPING_TOKEN_INVALID", 'send the wrapping token as {"token": "…"} or in X-Vault-Token');
}
