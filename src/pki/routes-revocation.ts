/**
 * Revocation status routes, all without a token (relying parties fetch them): complete and delta CRLs for
 * the default issuer (pki/crl, pki/crl/pem, pki/crl/delta, pki/crl/delta/pem) and per issuer
 * (pki/issuer/:ref/crl/der|pem, pki/issuer/:ref/crl/delta/der|pem), pki/crl/rotate (token), and the OCSP
 * responder (POST pki/ocsp with application/ocsp-request, GET pki/ocsp/<base64 request>, RFC 6960 A.1).
 */
import { FleetError } from "../errors/index.js";
import { type RouteContext, type RouteResult, type RouteSpec, envelope, raw } from "../server/types.js";
import type { BuiltCrl } from "./crl.js";
import { crlPem } from "./routes-certs.js";
import type { PkiServices } from "./services.js";

const OCSP_MAX_GET = 8 * 1024;

function crlResult(crl: BuiltCrl, pem: boolean, now: number): RouteResult {
  const headers = { "cache-control": `max-age=${Math.max(0, Math.floor((crl.nextUpdate - now) / 1000))}` };
  return pem
    ? { kind: "raw", status: 200, body: crlPem(crl.der), contentType: "application/x-pem-file", headers }
    : { kind: "raw", status: 200, body: crl.der, contentType: "application/pkix-crl", headers };
}

export function revocationRoutes(s: PkiServices): RouteSpec[] {
  const issuerOf = (ctx: RouteContext) => s.issuers.resolve(ctx.params.ref ?? "default");
  const crlRoute = (url: string, delta: boolean, pem: boolean): RouteSpec => ({
    method: "GET",
    url,
    auth: "none",
    handler: async (ctx) => {
      const issuer = issuerOf(ctx);
      const crl = delta ? await s.crl.delta(issuer) : await s.crl.full(issuer);
      return crlResult(crl, pem, s.clock.now().getTime());
    },
  });
  const ocspResult = async (der: Uint8Array): Promise<RouteResult> =>
    raw(await s.ocsp.respond(der), 200, "application/ocsp-response");

  return [
    crlRoute("/v1/pki/crl", false, false),
    crlRoute("/v1/pki/crl/pem", false, true),
    crlRoute("/v1/pki/crl/delta", true, false),
    crlRoute("/v1/pki/crl/delta/pem", true, true),
    crlRoute("/v1/pki/issuer/:ref/crl/der", false, false),
    crlRoute("/v1/pki/issuer/:ref/crl/pem", false, true),
    crlRoute("/v1/pki/issuer/:ref/crl/delta/der", true, false),
    crlRoute("/v1/pki/issuer/:ref/crl/delta/pem", true, true),
    {
      method: "GET",
      url: "/v1/pki/crl/rotate",
      auth: "token",
      handler: async () => {
        // Reloads from the store, so revocations made on other nodes enter the complete CRL too.
        for (const issuer of s.issuers.all()) await s.crl.rebuild(issuer, true);
        return envelope({ success: true });
      },
    },
    {
      method: "POST",
      url: "/v1/pki/ocsp",
      auth: "none",
      readOnly: true,
      rawBodyTypes: ["application/ocsp-request"],
      handler: async (ctx) => {
        if (!ctx.rawBody)
          throw new FleetError(
            "FR_UNSUPPORTED_MEDIA_TYPE",
            "send the DER OCSP request as application/ocsp-request",
          );
        return ocspResult(ctx.rawBody);
      },
    },
    {
      method: "GET",
      url: "/v1/pki/ocsp/*",
      auth: "none",
      handler: async (ctx) => {
        let text = ctx.params["*"] ?? "";
        if (text.length > OCSP_MAX_GET) return ocspResult(Buffer.alloc(0));
        try {
          text = decodeURIComponent(text);
        } catch {
          /* already decoded */
        }
        return ocspResult(Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64"));
      },
    },
  ];
}
