import { authBlock } from "../../auth/index.js";
import { fail } from "../../errors/index.js";
import { type RouteSpec, empty, envelope } from "../../server/types.js";
import type { CoreServices } from "../../server/main.js";
import type { CertCrls } from "./crls.js";
import { type RevocationCheck, certLogin, peerChain } from "./login.js";
import { type CertRoles, checkRoleName, roleBody, roleFromBody } from "./roles.js";

const WRITE = ["POST", "PUT"] as const;

/** auth/cert: roles (certs/:name), CRLs (crls/:name) and login over mutual TLS, as Vault's cert method. */
export function certRoutes(
  core: CoreServices,
  roles: CertRoles,
  crls: CertCrls,
  revocation: RevocationCheck | undefined,
): RouteSpec[] {
  return [
    {
      method: "LIST",
      url: "/v1/auth/cert/certs",
      auth: "token",
      handler: async () => {
        const keys = await roles.names();
        if (keys.length === 0) fail("FR_NOT_FOUND", "no cert roles");
        return envelope({ keys });
      },
    },
    {
      method: ["GET", ...WRITE, "DELETE"],
      url: "/v1/auth/cert/certs/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = checkRoleName(ctx.params.name ?? "");
        if (ctx.method === "GET") {
          const r = await roles.get(name);
          if (!r) fail("FR_NOT_FOUND", `no cert role named "${name}"`);
          return envelope(roleBody(r));
        }
        if (ctx.method === "DELETE") {
          await roles.delete(name);
          await ctx.auditEvent("auth.cert_role_deleted", { name });
          return empty();
        }
        await roles.put(roleFromBody(name, ctx.body, await roles.get(name)));
        await ctx.auditEvent("auth.cert_role_written", { name });
        return empty();
      },
    },
    {
      method: ["GET", ...WRITE, "DELETE"],
      url: "/v1/auth/cert/crls/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = checkRoleName(ctx.params.name ?? "");
        if (ctx.method === "GET") {
          const serials = await crls.get(name);
          if (!serials) fail("FR_NOT_FOUND", `no CRL named "${name}"`);
          return envelope({ serials: Object.fromEntries(serials.map((s) => [s, {}])) });
        }
        if (ctx.method === "DELETE") {
          await crls.delete(name);
          await ctx.auditEvent("auth.cert_crl_deleted", { name });
          return empty();
        }
        const input = ctx.body.crl;
        if (typeof input !== "string") fail("FR_VALIDATION", "crl is required: the CRL in PEM");
        const serials = await crls.put(name, input);
        await ctx.auditEvent("auth.cert_crl_written", { name, entries: serials.length });
        return empty();
      },
    },
    {
      method: WRITE,
      url: "/v1/auth/cert/login",
      auth: "none",
      rateLimit: "login",
      handler: async (ctx) => {
        const name = ctx.body.name;
        if (name !== undefined && name !== null && typeof name !== "string")
          fail("FR_VALIDATION", "name must be a string");
        try {
          const r = await certLogin(
            { roles, crls, tokens: core.tokens, clock: core.clock, revocation },
            peerChain(ctx.req.socket),
            name ? checkRoleName(name) : undefined,
          );
          await ctx.auditEvent("auth.cert_login", {
            role: r.role.name,
            serial: r.serial,
            common_name: r.commonName,
          });
          return envelope(null, {
            auth: authBlock(r.created),
            ...(r.created.warnings.length ? { warnings: [...r.created.warnings] } : {}),
          });
        } catch (e) {
          const detail = e instanceof Error ? e.message : String(e);
          await ctx.auditEvent("auth.cert_login_refused", { reason: detail.slice(0, 200) });
          throw e;
        }
      },
    },
  ];
}
