/**
 * Issuer routes: the CA certificates (Vault's pki/ca, pki/ca/pem, pki/ca_chain, pki/issuer/:ref/*),
 * creating roots and intermediates (pki/root/generate/internal, pki/intermediate/generate/internal,
 * pki/root/sign-intermediate, pki/intermediate/set-signed), the default issuer (pki/config/issuers) and
 * Fleetroot's delegated OCSP signer (pki/issuer/:ref/ocsp-signer).
 */
import type { DnAttribute } from "../crypto/index.js";
import { toPem } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";
import { type RequestKeyPolicy, requestKeyUri } from "../keys/index.js";
import { type RouteContext, type RouteSpec, envelope, raw } from "../server/types.js";
import { caCertRow } from "./cert-store.js";
import {
  certPem,
  colonSerial,
  keyAlgorithmOf,
  optDuration,
  optList,
  optString,
  pemCertificates,
} from "./format.js";
import type { Issuer } from "./issuers.js";
import type { PkiServices } from "./services.js";

const WRITE = ["POST", "PUT"] as const;

/** The subject of a CA from common_name, organization, ou, country. */
export function caSubject(body: Record<string, unknown>, required = true): DnAttribute[] | undefined {
  const cn = optString(body, "common_name");
  if (!cn) {
    if (required) throw new FleetError("FR_VALIDATION", "common_name is required");
    return undefined;
  }
  return [
    ...optList(body, "country").map((value) => ({ type: "C", value })),
    ...optList(body, "organization").map((value) => ({ type: "O", value })),
    ...optList(body, "ou").map((value) => ({ type: "OU", value })),
    { type: "CN", value: cn },
  ];
}

function pathLen(body: Record<string, unknown>): number | undefined {
  const v = body.max_path_length;
  if (v === undefined || v === null || v === "" || v === -1 || v === "-1") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new FleetError("FR_VALIDATION", "max_path_length must be -1 or a non-negative integer");
  return n;
}

export const chainPems = (issuer: Issuer): string[] => [issuer.certificate, ...issuer.chain].map(certPem);

export function issuerData(s: PkiServices, issuer: Issuer): Record<string, unknown> {
  return {
    issuer_id: issuer.id,
    issuer_name: issuer.name,
    certificate: certPem(issuer.certificate),
    ca_chain: chainPems(issuer),
    serial_number: colonSerial(Buffer.from(issuer.parts.serial).toString("hex")),
    expiration: Math.floor(issuer.notAfter / 1000),
    is_default: s.issuers.isDefault(issuer),
    ocsp_signer: issuer.ocsp ? certPem(issuer.ocsp.certificate) : null,
  };
}

/** `keyPolicy` says what a `key_ref` in a request may name (config `keys`). */
export function issuerRoutes(s: PkiServices, keyPolicy: RequestKeyPolicy): RouteSpec[] {
  const ref = (ctx: RouteContext) => s.issuers.resolve(ctx.params.ref ?? "default");
  const audit = (ctx: RouteContext, what: string, issuer: { id: string; name: string }) =>
    ctx.auditEvent("pki.issuer", { action: what, issuer: issuer.id, issuer_name: issuer.name });

  return [
    {
      method: "GET",
      url: "/v1/pki/ca",
      auth: "none",
      handler: async () => raw(s.issuers.resolve().certificate, 200, "application/pkix-cert"),
    },
    {
      method: "GET",
      url: "/v1/pki/ca/pem",
      auth: "none",
      handler: async () =>
        raw(certPem(s.issuers.resolve().certificate), 200, "application/pem-certificate-chain"),
    },
    {
      method: "GET",
      url: "/v1/pki/ca_chain",
      auth: "none",
      handler: async () =>
        raw(chainPems(s.issuers.resolve()).join(""), 200, "application/pem-certificate-chain"),
    },
    {
      method: "GET",
      url: "/v1/pki/issuer/:ref",
      auth: "none",
      handler: async (ctx) => envelope(issuerData(s, ref(ctx))),
    },
    {
      method: "GET",
      url: "/v1/pki/issuer/:ref/der",
      auth: "none",
      handler: async (ctx) => raw(ref(ctx).certificate, 200, "application/pkix-cert"),
    },
    {
      method: "GET",
      url: "/v1/pki/issuer/:ref/pem",
      auth: "none",
      handler: async (ctx) => raw(certPem(ref(ctx).certificate), 200, "application/pem-certificate-chain"),
    },
    {
      method: "LIST",
      url: "/v1/pki/issuers",
      auth: "token",
      handler: async () => {
        const all = await s.issuers.list();
        return envelope({
          keys: all.map((i) => i.issuer_id),
          key_info: Object.fromEntries(
            all.map((i) => [
              i.issuer_id,
              { issuer_name: i.issuer_name, is_default: i.is_default, pending: i.pending },
            ]),
          ),
        });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/root/generate/internal",
      auth: "token",
      handler: async (ctx) => {
        const b = ctx.body;
        const issuer = await s.issuers.createRoot({
          subject: caSubject(b) as DnAttribute[],
          name: optString(b, "issuer_name"),
          keyRef: await requestKeyUri(optString(b, "key_ref"), "key_ref", keyPolicy),
          algorithm: keyAlgorithmOf(b.key_type, b.key_bits),
          ttlSeconds: optDuration(b, "ttl"),
          pathLen: pathLen(b),
        });
        await audit(ctx, "root.generate", issuer);
        const d = issuerData(s, issuer);
        return envelope({ ...d, issuing_ca: d.certificate, key_id: issuer.id });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/intermediate/generate/internal",
      auth: "token",
      handler: async (ctx) => {
        const b = ctx.body;
        const out = await s.issuers.createIntermediateCsr({
          subject: caSubject(b) as DnAttribute[],
          name: optString(b, "issuer_name"),
          keyRef: await requestKeyUri(optString(b, "key_ref"), "key_ref", keyPolicy),
          algorithm: keyAlgorithmOf(b.key_type, b.key_bits),
          ttlSeconds: 0,
        });
        await audit(ctx, "intermediate.generate", out);
        return envelope({
          csr: toPem(out.csr, "CERTIFICATE REQUEST"),
          key_id: out.id,
          issuer_id: out.id,
          issuer_name: out.name,
        });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/intermediate/set-signed",
      auth: "token",
      handler: async (ctx) => {
        const issuer = await s.issuers.setSigned(pemCertificates(ctx.body.certificate, "certificate"));
        await audit(ctx, "intermediate.set-signed", issuer);
        return envelope({
          imported_issuers: [issuer.id],
          imported_keys: [issuer.id],
          ...issuerData(s, issuer),
        });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/root/sign-intermediate",
      auth: "token",
      handler: async (ctx) => signIntermediate(s, ctx, "default"),
    },
    {
      method: WRITE,
      url: "/v1/pki/issuer/:ref/sign-intermediate",
      auth: "token",
      handler: async (ctx) => signIntermediate(s, ctx, ctx.params.ref ?? "default"),
    },
    {
      method: "GET",
      url: "/v1/pki/config/issuers",
      auth: "token",
      handler: async () => {
        const all = await s.issuers.list();
        return envelope({ default: all.find((i) => i.is_default)?.issuer_id ?? "" });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/config/issuers",
      auth: "token",
      handler: async (ctx) => {
        const target = optString(ctx.body, "default");
        if (!target) throw new FleetError("FR_VALIDATION", "default is required: an issuer id or name");
        const issuer = await s.issuers.setDefault(target);
        await audit(ctx, "default.set", issuer);
        return envelope({ default: issuer.id });
      },
    },
    {
      method: WRITE,
      url: "/v1/pki/issuer/:ref/ocsp-signer",
      auth: "token",
      handler: async (ctx) => {
        const issuer = await s.issuers.createOcspSigner(
          ref(ctx),
          await requestKeyUri(optString(ctx.body, "key_ref"), "key_ref", keyPolicy),
          optDuration(ctx.body, "ttl"),
        );
        await audit(ctx, "ocsp-signer.create", issuer);
        s.ocsp.clear();
        return envelope({
          issuer_id: issuer.id,
          certificate: certPem((issuer.ocsp as { certificate: Buffer }).certificate),
        });
      },
    },
  ];
}

async function signIntermediate(s: PkiServices, ctx: RouteContext, issuerRef: string) {
  const b = ctx.body;
  const issuer = s.issuers.resolve(issuerRef);
  const csr = optString(b, "csr");
  if (!csr) throw new FleetError("FR_VALIDATION", "csr is required: the intermediate's PEM CSR");
  const out = await s.issuers.signIntermediate(issuer, csr, {
    subject: caSubject(b, false),
    ttlSeconds: optDuration(b, "ttl"),
    pathLen: pathLen(b),
  });
  await s.certs.insert(
    caCertRow(issuer.id, out.serial, out.der, ctx.auth?.accessor ?? null, s.clock.now().getTime()),
  );
  await ctx.auditEvent("pki.sign", { serial: out.serial, role: "sign-intermediate", issuer: issuer.id });
  return envelope({
    certificate: certPem(out.der),
    issuing_ca: certPem(issuer.certificate),
    ca_chain: [certPem(out.der), ...chainPems(issuer)],
    serial_number: colonSerial(out.serial),
  });
}
