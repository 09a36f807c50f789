import type { TLSSocket } from "node:tls";
import { fromPem, toPem } from "../crypto/index.js";
import { type DeviceRegistry, checkDeviceId, checkLabels, checkName } from "../devices/index.js";
import { fail } from "../errors/index.js";
import { type RouteContext, type RouteSpec, empty, envelope } from "../server/types.js";
import type { Store } from "../store/index.js";
import { parseDuration } from "../util/duration.js";
import type { FailureLimiter } from "./failure-limiter.js";
import { IdentityStore, readPublicKey } from "./identity-store.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { NonceStore } from "./nonces.js";
import { type ProvisionerConfig, checkProvisionerName } from "./provisioner-config.js";
import type { ProvisionerStore } from "./provisioner-store.js";
import type { DeviceAuthority } from "./authority.js";
import type { EnrollResult, EnrollService } from "./service.js";

export interface EnrollRouteDeps {
  readonly store: Store;
  readonly registry: DeviceRegistry;
  readonly provisioners: ProvisionerStore;
  readonly identities: IdentityStore;
  readonly tokens: JoinTokenStore;
  readonly nonces: NonceStore;
  readonly service: EnrollService;
  readonly failures: FailureLimiter;
  readonly authority: DeviceAuthority;
}

const nameOf = (ctx: RouteContext): string => checkProvisionerName(ctx.params.name ?? "");

async function provisionerOfType<T extends ProvisionerConfig["type"]>(
  d: EnrollRouteDeps,
  name: string,
  type: T,
): Promise<Extract<ProvisionerConfig, { type: T }>> {
  const cfg = await d.provisioners.get(name);
  if (cfg.type !== type) fail("FR_VALIDATION", `provisioner "${name}" is of type ${cfg.type}, not ${type}`);
  return cfg as Extract<ProvisionerConfig, { type: T }>;
}

/** Creates the pending device a registration names, unless it exists (then it must not be decommissioned). */
async function pendingDevice(
  d: EnrollRouteDeps,
  cfg: ProvisionerConfig,
  body: Record<string, unknown>,
): Promise<string> {
  const id = checkDeviceId(body.device_id);
  const existing = await d.registry.find(id);
  if (existing?.status === "decommissioned") fail("FR_DEVICE_STATE", `device "${id}" is decommissioned`);
  if (!existing) {
    await d.registry.create({
      id,
      name: body.name === undefined ? undefined : checkName(body.name),
      labels: checkLabels(body.labels),
      status: "pending",
      method: cfg.type,
      provisioner: cfg.name,
    });
  }
  return id;
}

function issuedJson(r: EnrollResult): Record<string, unknown> {
  return {
    device_id: r.device.id,
    certificate: toPem(r.issued.certificate, "CERTIFICATE"),
    ca_chain: r.issued.chain.map((c) => toPem(c, "CERTIFICATE")),
    issuing_ca: r.issued.chain[0] ? toPem(r.issued.chain[0], "CERTIFICATE") : null,
    serial_number: r.issued.serial,
    not_before: new Date(r.issued.notBefore).toISOString(),
    expiration: Math.floor(r.issued.notAfter / 1000),
  };
}

export function enrollRoutes(d: EnrollRouteDeps): RouteSpec[] {
  return [
    // --- provisioners ---
    {
      method: ["GET", "LIST"],
      url: "/v1/fleet/provisioners",
      auth: "token",
      capability: "list",
      handler: async () => envelope({ keys: await d.provisioners.list() }),
    },
    {
      method: "GET",
      url: "/v1/fleet/provisioners/:name",
      auth: "token",
      handler: async (ctx) => envelope(await d.provisioners.get(nameOf(ctx))),
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/fleet/provisioners/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = nameOf(ctx);
        // The role must exist now: a provisioner bound to a typo would refuse every device later.
        if (typeof ctx.body.role === "string" && ctx.body.role) await d.authority.checkRole(ctx.body.role);
        const cfg = await d.provisioners.put(name, ctx.body);
        await ctx.auditEvent("fleet.provisioner.write", { name: cfg.name, type: cfg.type, role: cfg.role });
        return envelope(cfg);
      },
    },
    {
      method: "DELETE",
      url: "/v1/fleet/provisioners/:name",
      auth: "token",
      handler: async (ctx) => {
        await d.provisioners.delete(nameOf(ctx));
        await ctx.auditEvent("fleet.provisioner.delete", { name: nameOf(ctx) });
        return empty();
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/provisioners/:name/tokens",
      auth: "token",
      handler: async (ctx) => {
        const cfg = await provisionerOfType(d, nameOf(ctx), "join-token");
        const ttlIn = ctx.body.ttl;
        if (ttlIn !== undefined && typeof ttlIn !== "string" && typeof ttlIn !== "number")
          fail("FR_VALIDATION", 'ttl must be a duration such as "15m" or a number of seconds');
        const ttl = ttlIn === undefined ? cfg.token_ttl : parseDuration(ttlIn, "ttl");
        if (ttl < 1 || ttl > cfg.max_token_ttl)
          fail("FR_VALIDATION", `ttl must be 1s to ${cfg.max_token_ttl}s (max_token_ttl)`);
        if (
          ctx.body.device_id === undefined &&
          (ctx.body.name !== undefined || ctx.body.labels !== undefined)
        )
          fail(
            "FR_VALIDATION",
            "name and labels describe the device a bound token creates: give device_id too",
          );
        const deviceId = ctx.body.device_id === undefined ? undefined : await pendingDevice(d, cfg, ctx.body);
        const t = await d.tokens.create(cfg.name, deviceId, ttl);
        await ctx.auditEvent("fleet.join_token.create", {
          provisioner: cfg.name,
          accessor: t.accessor,
          device_id: deviceId ?? "",
        });
        return envelope({
          token: t.token,
          accessor: t.accessor,
          device_id: deviceId ?? null,
          expires_at: new Date(t.expiresAt).toISOString(),
        });
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/provisioners/:name/keys",
      auth: "token",
      handler: async (ctx) => {
        const cfg = await provisionerOfType(d, nameOf(ctx), "registered-key");
        const spki = readPublicKey(ctx.body.public_key, "certify");
        if (await d.identities.registeredKey(spki))
          fail("FR_CONFLICT", "this public key is already registered");
        const deviceId = await pendingDevice(d, cfg, ctx.body);
        const fingerprint = await d.identities.registerKey(cfg.name, deviceId, spki);
        await ctx.auditEvent("fleet.key.register", {
          provisioner: cfg.name,
          device_id: deviceId,
          fingerprint,
        });
        return envelope({ device_id: deviceId, fingerprint });
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/provisioners/:name/attestation-keys",
      auth: "token",
      handler: async (ctx) => {
        const cfg = await provisionerOfType(d, nameOf(ctx), "psa");
        const instance = ctx.body.instance_id;
        if (typeof instance !== "string" || !/^01[0-9a-fA-F]{64}$/.test(instance)) {
          fail("FR_VALIDATION", "instance_id must be the 33-byte PSA instance id in hex (starting 01)");
        }
        const spki = readPublicKey(ctx.body.public_key, "attest");
        if (await d.identities.psaKey(instance.toLowerCase()))
          fail("FR_CONFLICT", `instance id ${instance} is already registered`);
        const deviceId = await pendingDevice(d, cfg, ctx.body);
        await d.identities.registerPsaKey(cfg.name, instance.toLowerCase(), deviceId, spki);
        await ctx.auditEvent("fleet.attestation_key.register", {
          provisioner: cfg.name,
          device_id: deviceId,
          instance_id: instance,
        });
        return envelope({ device_id: deviceId, instance_id: instance.toLowerCase() });
      },
    },

    // --- manufacturers ---
    {
      method: ["GET", "LIST"],
      url: "/v1/fleet/manufacturers",
      auth: "token",
      capability: "list",
      handler: async () => envelope({ keys: await d.identities.manufacturers() }),
    },
    {
      method: "GET",
      url: "/v1/fleet/manufacturers/:name",
      auth: "token",
      handler: async (ctx) => {
        const m = await d.identities.manufacturer(nameOf(ctx));
        if (!m) fail("FR_MANUFACTURER_NOT_FOUND", `no manufacturer named "${nameOf(ctx)}"`);
        return envelope({ ...IdentityStore.describe(m), certificate: toPem(m.certificate, "CERTIFICATE") });
      },
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/fleet/manufacturers/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = nameOf(ctx);
        const cert = readCaText(ctx.body.certificate);
        const crl = ctx.body.crl === undefined || ctx.body.crl === "" ? undefined : readCrlText(ctx.body.crl);
        const m = await d.identities.putManufacturer(name, cert!, crl);
        await ctx.auditEvent("fleet.manufacturer.write", { name, crl: !!crl });
        return envelope(IdentityStore.describe(m));
      },
    },
    {
      method: "DELETE",
      url: "/v1/fleet/manufacturers/:name",
      auth: "token",
      handler: async (ctx) => {
        const name = nameOf(ctx);
        // An x509 provisioner naming a deleted manufacturer would refuse every device (403): refuse here.
        const users = await d.provisioners.usingManufacturer(name);
        if (users.length) {
          fail(
            "FR_CONFLICT",
            `manufacturer "${name}" is used by provisioner${users.length > 1 ? "s" : ""} ${users.map((u) => `"${u}"`).join(", ")}; ` +
              "remove it from their manufacturers (or delete them) first",
          );
        }
        await d.identities.deleteManufacturer(name);
        await ctx.auditEvent("fleet.manufacturer.delete", { name });
        return empty();
      },
    },

    // --- enrollment (devices, no token: the proof is the credential) ---
    {
      method: "POST",
      url: "/v1/fleet/enroll/nonce",
      auth: "none",
      rateLimit: "login",
      handler: async () => {
        const n = await d.nonces.issue();
        return envelope({ nonce: n.nonce, expires_at: new Date(n.expiresAt).toISOString() });
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/enroll",
      auth: "none",
      redact: ["token"],
      handler: async (ctx) => {
        const client = ctx.req.ip;
        if (d.failures.blocked(client)) {
          fail("FR_RATE_LIMITED", `too many failed enrollment attempts from ${client}; retry in a minute`);
        }
        let r: EnrollResult;
        try {
          r = await d.service.enroll(ctx.body.provisioner, ctx.body);
        } catch (e) {
          d.failures.record(client);
          throw e;
        }
        await ctx.auditEvent("fleet.enroll", {
          provisioner: r.options.provisioner,
          method: r.options.method,
          device_id: r.device.id,
          serial: r.issued.serial,
          ...r.audit,
        });
        return envelope(issuedJson(r));
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/renew",
      auth: "none",
      handler: async (ctx) => {
        const r = await d.service.renew(peerCertificate(ctx), ctx.body);
        await ctx.auditEvent("fleet.renew", { device_id: r.device.id, serial: r.issued.serial, ...r.audit });
        return envelope(issuedJson(r));
      },
    },
  ];
}

function peerCertificate(ctx: RouteContext): Buffer | undefined {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function") return undefined;
  const cert = socket.getPeerCertificate(false);
  return cert && "raw" in cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
}

/** The manufacturer CA: the first PEM certificate (an operator's upload, so FR_VALIDATION, not a device's proof). */
function readCaText(input: unknown): Buffer {
  const blocks =
    typeof input === "string"
      ? input.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)
      : null;
  if (!blocks?.length)
    fail(
      "FR_VALIDATION",
      "certificate must be the manufacturer CA certificate in PEM (-----BEGIN CERTIFICATE-----)",
    );
  return fromPem(blocks[0]!, "CERTIFICATE").der;
}

function readCrlText(input: unknown): Buffer {
  if (typeof input !== "string") fail("FR_VALIDATION", "crl must be a PEM CRL (-----BEGIN X509 CRL-----)");
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(input);
  if (!m?.[1]) fail("FR_VALIDATION", "crl must be a PEM CRL (-----BEGIN X509 CRL-----)");
  return Buffer.from(m[1].replace(/\s+/g, ""), "base64");
}
