import { toPem } from "../crypto/index.js";
import { fail } from "../errors/index.js";
import { type RouteContext, type RouteSpec, envelope } from "../server/types.js";
import type { DeviceStatus } from "./migrations.js";
import { type Device, type DeviceRegistry, deviceStatuses } from "./registry.js";
import { checkDeviceId, checkLabels, parseLabelSelector } from "./validate.js";

/** What decommissioning needs beyond the registry (revocation through the authority). */
export interface DeviceLifecycle {
  decommission(id: string): Promise<{ device: Device; revoked: string[] }>;
}

const MAX_PAGE = 1000;

export function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id,
    name: d.name,
    labels: d.labels,
    status: d.status,
    enrollment_method: d.method,
    provisioner: d.provisioner,
    created_at: new Date(d.createdAt).toISOString(),
    updated_at: new Date(d.updatedAt).toISOString(),
    last_seen: d.lastSeen === null ? null : new Date(d.lastSeen).toISOString(),
  };
}

const idOf = (ctx: RouteContext): string => checkDeviceId(ctx.params.id, "the device id in the path");

/** /v1/fleet/devices: list (filters, keyset paging), read, labels, suspend, resume, decommission. */
export function deviceRoutes(registry: DeviceRegistry, lifecycle: DeviceLifecycle): RouteSpec[] {
  const list = async (ctx: RouteContext) => {
    const q = ctx.query;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      fail("FR_VALIDATION", `limit must be 1-${MAX_PAGE}`);
    if (q.status !== undefined && !deviceStatuses.includes(q.status as DeviceStatus)) {
      fail("FR_VALIDATION", `status must be one of ${deviceStatuses.join(", ")}`);
    }
    const page = await registry.list({
      status: q.status as DeviceStatus | undefined,
      provisioner: q.provisioner || undefined,
      labels: q.label ? parseLabelSelector(q.label) : undefined,
      namePrefix: q.name_prefix || undefined,
      after: q.after || undefined,
      limit,
    });
    return envelope({
      keys: page.devices.map((d) => d.id),
      devices: page.devices.map(deviceJson),
      next: page.next ?? null,
    });
  };
  const transition = (name: string, move: (id: string) => Promise<Device>) => async (ctx: RouteContext) => {
    const device = await move(idOf(ctx));
    await ctx.auditEvent(`fleet.device.${name}`, { device_id: device.id, status: device.status });
    return envelope(deviceJson(device));
  };
  return [
    { method: ["GET", "LIST"], url: "/v1/fleet/devices", auth: "token", capability: "list", handler: list },
    {
      method: "GET",
      url: "/v1/fleet/devices/:id",
      auth: "token",
      handler: async (ctx) => {
        const device = await registry.get(idOf(ctx));
        const certs = await registry.certificates(device.id);
        const current = certs.find((c) => c.current);
        return envelope({
          ...deviceJson(device),
          certificate: current ? toPem(current.der, "CERTIFICATE") : null,
          certificates: certs.map((c) => ({
            serial_number: c.serial,
            issuer_id: c.issuerId,
            not_before: new Date(c.notBefore).toISOString(),
            not_after: new Date(c.notAfter).toISOString(),
            current: c.current,
            revoked_at: c.revokedAt === null ? null : new Date(c.revokedAt).toISOString(),
            fingerprint_sha256: c.fingerprint,
          })),
        });
      },
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/fleet/devices/:id/labels",
      auth: "token",
      handler: async (ctx) => {
        // Required: a body without `labels` (a typo such as `label`) must not clear every label.
        if (ctx.body.labels === undefined)
          fail("FR_VALIDATION", "labels is required: an object of key/value pairs ({} clears them)");
        const device = await registry.setLabels(idOf(ctx), checkLabels(ctx.body.labels));
        await ctx.auditEvent("fleet.device.labels", { device_id: device.id });
        return envelope(deviceJson(device));
      },
    },
    {
      method: "POST",
      url: "/v1/fleet/devices/:id/suspend",
      auth: "token",
      handler: transition("suspend", (id) => registry.transition(id, ["pending", "active"], "suspended")),
    },
    {
      method: "POST",
      url: "/v1/fleet/devices/:id/resume",
      auth: "token",
      handler: transition("resume", (id) => registry.resume(id)),
    },
    {
      method: "POST",
      url: "/v1/fleet/devices/:id/decommission",
      auth: "token",
      handler: async (ctx) => {
        const { device, revoked } = await lifecycle.decommission(idOf(ctx));
        await ctx.auditEvent(
          "fleet.device.decommission",
          { device_id: device.id, revoked: revoked.length },
          { serials: revoked },
        );
        return envelope({ ...deviceJson(device), revoked_serials: revoked });
      },
    },
  ];
}
