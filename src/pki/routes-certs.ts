/**
 * Vault-compatible certificate routes: pki/roles, pki/sign/:role, pki/issue/:role, pki/certs,
 * pki/cert/:serial and pki/revoke. Issuance and revocation each write a security event (pki.sign,
 * pki.revoke) naming serial, role and issuer.
 */
import { toPem } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";
import { type RouteContext, type RouteSpec, empty, envelope } from "../server/types.js";
import type { Issued } from "./authority.js";
import { certPem, colonSerial, normalizeSerial, optString } from "./format.js";
import { chainPems } from "./routes-issuers.js";
import type { PkiServices } from "./services.js";

const WRITE = ["POST", "PUT"] as const;

function issuedData(issued: Issued, format: string | undefined): Record<string, unknown> {
  const enc = (der: Buffer) => (format === "der" ? der.toString("base64") : certPem(der));
  const chain = [issued.issuer.certificate, ...issued.issuer.chain];
  const certificate =
    format === "pem_bundle" ? [issued.der, ...chain].map(certPem).join("") : enc(issued.der);
  return {
    certificate,
    issuing_ca: enc(issued.issuer.certificate),
    ca_chain: chain.map(enc),
    serial_number: colonSerial(issued.serial),
    expiration: Math.floor(issued.notAfter / 1000),
    issuer_id: issued.issuer.id,
    ...(issued.privateKey ? { private_key: issued.privateKey, private_key_type: issued.privateKeyType } : {}),
  };
}

function formatOf(body: Record<string, unknown>): string | undefined {
  const f = optString(body, "format");
  if (f && !["pem", "der", "pem_bundle"].includes(f))
    throw new FleetError("FR_VALIDATION", `format "${f}" is not supported; use pem, der or pem_bundle`);
  return f;
}

export function certRoutes(s: PkiServices): RouteSpec[] {
  const issuance = (kind: "sign" | "issue") => async (ctx: RouteContext) => {
    const role = ctx.params.role ?? "";
    const format = formatOf(ctx.body);
    const issued =
      kind === "sign"
        ? await s.authority.sign(role, ctx.body, ctx.auth?.accessor)
        : await s.authority.issue(role, ctx.body, ctx.auth?.accessor);
    await ctx.auditEvent("pki.sign", { serial: colonSerial(issued.serial), role, issuer: issued.issuer.id });
    return envelope(issuedData(issued, format), issued.warnings.length ? { warnings: issued.warnings } : {});
  };

  return [
    {
      method: "LIST",
      url: "/v1/pki/roles",
      auth: "token",
      handler: async () => envelope({ keys: await s.roles.list() }),
    },
    {
      method: WRITE,
      url: "/v1/pki/roles/:name",
      auth: "token",
      handler: async (ctx) => envelope(await s.roles.put(ctx.params.name ?? "", ctx.body)),
    },
    {
      method: "GET",
      url: "/v1/pki/roles/:name",
      auth: "token",
      handler: async (ctx) => envelope(await s.roles.get(ctx.params.name ?? "")),
    },
    {
      method: "DELETE",
      url: "/v1/pki/roles/:name",
      auth: "token",
      handler: async (ctx) => {
        await s.roles.delete(ctx.params.name ?? "");
        return empty();
      },
    },
    { method: WRITE, url: "/v1/pki/sign/:role", auth: "token", handler: issuance("sign") },
    // The private key is in the response only; the audit log keeps its HMAC, never the key.
    { method: WRITE, url: "/v1/pki/issue/:role", auth: "token", handler: issuance("issue") },
    {
      method: "LIST",
      url: "/v1/pki/certs",
      auth: "token",
      handler: async (ctx) => {
        const after = ctx.query.after ? normalizeSerial(ctx.query.after) : undefined;
        const limit = ctx.query.limit === undefined ? 1000 : Number(ctx.query.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
          throw new FleetError("FR_VALIDATION", "limit must be an integer from 1 to 10000");
        const rows = await s.certs.list(after, limit);
        const keys = rows.map((r) => colonSerial(r.serial));
        return envelope({
          keys,
          key_info: Object.fromEntries(
            rows.map((r) => [
              colonSerial(r.serial),
              {
                issuer_id: r.issuer_id,
                subject: r.subject,
                not_after: Math.floor(Number(r.not_after) / 1000),
                revoked: r.revoked_at !== null,
              },
            ]),
          ),
        });
      },
    },
    {
      method: "GET",
      url: "/v1/pki/cert/:serial",
      auth: "none",
      handler: async (ctx) => certByRef(s, ctx.params.serial ?? ""),
    },
    {
      method: WRITE,
      url: "/v1/pki/revoke",
      auth: "token",
      handler: async (ctx) => {
        const serial = normalizeSerial(ctx.body.serial_number);
        const r = await s.authority.revoke(serial, ctx.body.reason, optString(ctx.body, "issuer_ref"));
        if (r.changed)
          await ctx.auditEvent("pki.revoke", {
            serial: colonSerial(serial),
            issuer: r.issuer.id,
            reason: r.reason,
          });
        return envelope({
          revocation_time: Math.floor(r.revokedAt / 1000),
          revocation_time_rfc3339: new Date(r.revokedAt).toISOString(),
          reason: r.reason,
          state: "revoked",
        });
      },
    },
  ];
}

/** pki/cert/:serial, with Vault's special names ca, ca_chain, crl and delta-crl. */
async function certByRef(s: PkiServices, ref: string) {
  if (ref === "ca") return envelope({ certificate: certPem(s.issuers.resolve().certificate) });
  if (ref === "ca_chain") {
    const pems = chainPems(s.issuers.resolve());
    return envelope({ certificate: pems.join(""), ca_chain: pems });
  }
  if (ref === "crl" || ref === "delta-crl") {
    const issuer = s.issuers.resolve();
    const crl = ref === "crl" ? await s.crl.full(issuer) : await s.crl.delta(issuer);
    return envelope({ certificate: crlPem(crl.der) });
  }
  const serial = normalizeSerial(ref);
  const row = await s.certs.get(serial);
  if (!row)
    throw new FleetError("FR_PKI_CERT_NOT_FOUND", `no certificate with serial ${colonSerial(serial)}`);
  const revoked = row.revoked_at !== null;
  return envelope({
    certificate: certPem(Buffer.from(row.der)),
    serial_number: colonSerial(row.serial),
    issuer_id: row.issuer_id,
    subject: row.subject,
    sans: JSON.parse(row.sans) as unknown,
    not_before: Math.floor(Number(row.not_before) / 1000),
    not_after: Math.floor(Number(row.not_after) / 1000),
    role: row.role,
    requester: row.requester,
    revocation_time: revoked ? Math.floor(Number(row.revoked_at) / 1000) : 0,
    revocation_time_rfc3339: revoked ? new Date(Number(row.revoked_at)).toISOString() : "",
  });
}

export const crlPem = (der: Buffer): string => toPem(der, "X509 CRL");
