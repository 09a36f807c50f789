/** `/v1/ros2/*`: the fleet's ROS 2 CAs and governance, policies, assignments, and enclaves for devices. */
import type { TLSSocket } from "node:tls";
import { type CrlReason, crlReasons, derFrom } from "../../crypto/index.js";
import { type DeviceRegistry, checkDeviceId, checkLabels, parseLabelSelector } from "../../devices/index.js";
import { fail } from "../../errors/index.js";
import type { PkiServices } from "../../pki/index.js";
import type { CoreServices } from "../../server/main.js";
import { type RouteContext, type RouteResult, type RouteSpec, empty, envelope } from "../../server/types.js";
import { governanceXml } from "../governance.js";
import { checkEnclaveName } from "../layout.js";
import { signSmime } from "../smime.js";
import { type CaSigners, createCas } from "./cas.js";
import {
  caRequest,
  checkFields,
  defaultSettings,
  governanceOptions,
  mergeSettings,
  settingsJson,
} from "./config.js";
import { deviceFromPeer, issueEnclave, parseStoredPolicy, readEnclaveCsr } from "./issue.js";
import { type FleetRevocations, crlPem } from "./revocation.js";
import { type Assignment, type FleetConfig, type FleetRos2Store, checkObjectName } from "./store.js";

export interface Ros2RouteDeps {
  readonly core: CoreServices;
  readonly store: FleetRos2Store;
  readonly registry: DeviceRegistry;
  readonly signers: CaSigners;
  readonly pki: () => PkiServices | undefined;
  readonly revocations: FleetRevocations;
}

function configJson(c: FleetConfig): Record<string, unknown> {
  return {
    ca_source: c.source,
    issuer_id: c.issuerId ?? null,
    key_type: c.algorithm,
    identity_ca: c.identity.certificate,
    permissions_ca: c.permissions.certificate,
    identity_ca_chain: c.identity.chain,
    permissions_ca_chain: c.permissions.chain,
    governance_xml: c.governanceXml,
    updated_at: c.updatedAt,
    ...settingsJson(c.settings),
  };
}

function peerCertificate(ctx: RouteContext): Buffer | undefined {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function") return undefined;
  const cert = socket.getPeerCertificate(false);
  return cert && "raw" in cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
}

function readAssignment(name: string, b: Record<string, unknown>): Assignment {
  for (const k of Object.keys(b)) {
    if (!["policy", "device_id", "labels"].includes(k))
      fail("FR_VALIDATION", `unknown field "${k}"; an assignment takes policy and device_id or labels`);
  }
  if (typeof b.policy !== "string") fail("FR_VALIDATION", "policy is required: the name of a ros2 policy");
  const policy = checkObjectName(b.policy, "policy");
  if ((b.device_id === undefined) === (b.labels === undefined))
    fail("FR_VALIDATION", "give exactly one of device_id or labels (k=v,k2=v2 or an object)");
  if (b.device_id !== undefined) return { name, policy, deviceId: checkDeviceId(b.device_id) };
  // The object form is checked as it is: joined into a selector string, a value holding "," or "=" would
  // turn into other labels, and a non-string value into "[object Object]".
  const labels =
    typeof b.labels === "string"
      ? parseLabelSelector(b.labels)
      : typeof b.labels === "object" && b.labels && !Array.isArray(b.labels)
        ? checkLabels(b.labels)
        : fail("FR_VALIDATION", "labels must be k=v,k2=v2 or an object");
  if (Object.keys(labels).length === 0) fail("FR_VALIDATION", "labels must name at least one label");
  return { name, policy, labels };
}

function readRevoke(b: Record<string, unknown>): {
  deviceId: string;
  enclave: string | undefined;
  reason: CrlReason | undefined;
} {
  for (const k of Object.keys(b)) {
    if (!["device_id", "enclave", "reason"].includes(k))
      fail(
        "FR_VALIDATION",
        `unknown field "${k}"; revoke takes device_id, and optionally enclave and reason`,
      );
  }
  if (b.device_id === undefined)
    fail("FR_VALIDATION", "device_id is required: the device whose enclaves to revoke");
  const deviceId = checkDeviceId(b.device_id);
  if (b.enclave !== undefined && typeof b.enclave !== "string")
    fail("FR_VALIDATION", "enclave must be a fully qualified enclave name, e.g. /ns/node");
  const enclave = b.enclave === undefined ? undefined : checkEnclaveName(b.enclave as string);
  if (b.reason !== undefined && (typeof b.reason !== "string" || !Object.hasOwn(crlReasons, b.reason)))
    fail("FR_VALIDATION", `reason must be one of ${Object.keys(crlReasons).join(", ")}`);
  return { deviceId, enclave, reason: b.reason as CrlReason | undefined };
}

export function ros2Routes(d: Ros2RouteDeps): RouteSpec[] {
  const { core, store } = d;
  // Config writes in one process are serialized, so two first POSTs cannot both create CAs here.
  let configLock: Promise<unknown> = Promise.resolve();
  const name = (ctx: RouteContext, what: string) => checkObjectName(ctx.params.name ?? "", what);

  const writeConfig = async (ctx: RouteContext): Promise<FleetConfig> => {
    const prev = await store.config();
    checkFields(ctx.body, prev !== undefined);
    const settings = mergeSettings(prev?.settings ?? defaultSettings, ctx.body);
    const gov = governanceXml(governanceOptions(settings));
    let cas: Pick<FleetConfig, "identity" | "permissions" | "issuerId" | "source" | "algorithm">;
    // The CA keys made below stay only once the configuration naming them is stored.
    let made: Awaited<ReturnType<typeof createCas>> | undefined;
    if (prev) {
      cas = prev;
    } else {
      const req = await caRequest(ctx.body, core.requestKeyPolicy);
      made = await createCas(
        {
          keys: core.keys,
          clock: core.clock,
          dataDir: core.paths.dataDir,
          pki: d.pki,
          audit: (n, f) => ctx.auditEvent(n, f),
        },
        req,
      );
      const { identity, permissions, issuerId } = made;
      cas = { identity, permissions, issuerId, source: req.source, algorithm: req.algorithm };
    }
    let next: FleetConfig;
    try {
      const permSigner = await d.signers.get(cas.permissions.keyUri);
      const p7s = await signSmime(
        gov,
        derFrom(cas.permissions.certificate, "CERTIFICATE"),
        permSigner,
        core.clock.now(),
      );
      next = {
        version: 1,
        ...cas,
        settings,
        governanceXml: gov,
        governanceP7s: p7s,
        updatedAt: core.clock.now().toISOString(),
      };
      await store.putConfig(next);
    } catch (e) {
      if (made) {
        await made.discard();
        d.signers.clear(); // it may hold a signer of a key just removed
      }
      throw e;
    }
    made?.keep();
    await ctx.auditEvent("ros2.config", {
      created: !prev,
      ca_source: next.source,
      issuer: next.issuerId ?? "",
    });
    return next;
  };

  return [
    {
      method: "GET",
      url: "/v1/ros2/config",
      auth: "token",
      handler: async () => envelope(configJson(await store.requireConfig())),
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/ros2/config",
      auth: "token",
      handler: async (ctx) => {
        const run = configLock.then(() => writeConfig(ctx));
        configLock = run.catch(() => undefined);
        return envelope(configJson(await run));
      },
    },

    // --- policies (sros2 policy XML) ---
    {
      method: ["GET", "LIST"],
      url: "/v1/ros2/policies",
      auth: "token",
      capability: "list",
      handler: async () => envelope({ keys: await store.policies() }),
    },
    {
      method: "GET",
      url: "/v1/ros2/policies/:name",
      auth: "token",
      handler: async (ctx) => {
        const p = await store.policy(name(ctx, "policy"));
        if (!p) fail("FR_NOT_FOUND", `no ros2 policy named "${name(ctx, "policy")}"`);
        const parsed = parseStoredPolicy(p.xml, p.name);
        return envelope({
          name: p.name,
          policy: p.xml,
          enclaves: parsed.enclaves.map((e) => e.path),
          updated_at: p.updatedAt,
        });
      },
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/ros2/policies/:name",
      auth: "token",
      handler: async (ctx) => {
        const n = name(ctx, "policy");
        const extra = Object.keys(ctx.body).find((k) => k !== "policy");
        if (extra !== undefined) fail("FR_VALIDATION", `unknown field "${extra}"; a policy takes policy`);
        const xml = ctx.body.policy;
        if (typeof xml !== "string" || !xml.trim())
          fail("FR_VALIDATION", "policy is required: the sros2 policy XML as a string");
        const parsed = parseStoredPolicy(xml, n);
        await store.putPolicy({ name: n, xml, updatedAt: core.clock.now().toISOString() });
        const enclaves = parsed.enclaves.map((e) => e.path);
        await ctx.auditEvent("ros2.policy.write", { name: n, enclaves: enclaves.length });
        return envelope({ name: n, enclaves });
      },
    },
    {
      method: "DELETE",
      url: "/v1/ros2/policies/:name",
      auth: "token",
      handler: async (ctx) => {
        await store.deletePolicy(name(ctx, "policy"));
        await ctx.auditEvent("ros2.policy.delete", { name: name(ctx, "policy") });
        return empty();
      },
    },

    // --- assignments: policy → device id or labels ---
    {
      method: ["GET", "LIST"],
      url: "/v1/ros2/assignments",
      auth: "token",
      capability: "list",
      handler: async () => envelope({ keys: (await store.assignments()).map((a) => a.name) }),
    },
    {
      method: "GET",
      url: "/v1/ros2/assignments/:name",
      auth: "token",
      handler: async (ctx) => {
        const a = await store.assignment(name(ctx, "assignment"));
        if (!a) fail("FR_NOT_FOUND", `no ros2 assignment named "${name(ctx, "assignment")}"`);
        return envelope({
          name: a.name,
          policy: a.policy,
          device_id: a.deviceId ?? null,
          labels: a.labels ?? null,
        });
      },
    },
    {
      method: ["POST", "PUT"],
      url: "/v1/ros2/assignments/:name",
      auth: "token",
      handler: async (ctx) => {
        const a = readAssignment(name(ctx, "assignment"), ctx.body);
        if (!(await store.policy(a.policy)))
          fail(
            "FR_NOT_FOUND",
            `no ros2 policy named "${a.policy}"; write it first (ros2/policies/${a.policy})`,
          );
        await store.putAssignment(a);
        await ctx.auditEvent("ros2.assignment.write", {
          name: a.name,
          policy: a.policy,
          device_id: a.deviceId ?? "",
          labels: a.labels
            ? Object.entries(a.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(",")
            : "",
        });
        return envelope({
          name: a.name,
          policy: a.policy,
          device_id: a.deviceId ?? null,
          labels: a.labels ?? null,
        });
      },
    },
    {
      method: "DELETE",
      url: "/v1/ros2/assignments/:name",
      auth: "token",
      handler: async (ctx) => {
        await store.deleteAssignment(name(ctx, "assignment"));
        await ctx.auditEvent("ros2.assignment.delete", { name: name(ctx, "assignment") });
        return empty();
      },
    },

    // --- enclaves for enrolled devices (no token: the TLS client certificate is the credential) ---
    {
      method: "POST",
      url: "/v1/ros2/enclave",
      auth: "none",
      handler: async (ctx) => {
        const device = await deviceFromPeer(d.registry, d.pki(), core.clock, peerCertificate(ctx));
        const cfg = await store.requireConfig();
        if (typeof ctx.body.enclave !== "string") fail("FR_VALIDATION", "enclave is required, e.g. /ns/node");
        // Checked before anything else is looked at: a bad name is the client's error, whatever the policy.
        const enclave = checkEnclaveName(ctx.body.enclave);
        const assignment = await store.assignmentFor(device);
        const stored =
          (await store.policy(assignment.policy)) ??
          fail(
            "FR_ROS2_FLEET_DENIED",
            `assignment "${assignment.name}" names policy "${assignment.policy}", which no longer exists`,
          );
        const policy = parseStoredPolicy(stored.xml, stored.name);
        const csr = readEnclaveCsr(ctx.body.csr, enclave);
        const out = await issueEnclave(cfg, d.signers, core.clock, {
          enclave,
          csr,
          policy,
          policyName: stored.name,
        });
        // Recorded before the answer leaves: a certificate the server cannot revoke is never handed out.
        await d.revocations.record({
          deviceId: device.id,
          enclave: out.enclave,
          serial: out.serial,
          notAfter: out.notAfter.getTime(),
        });
        await ctx.auditEvent("ros2.enclave", {
          device_id: device.id,
          enclave: out.enclave,
          serial: out.serial,
          policy: stored.name,
        });
        return envelope({
          device_id: device.id,
          policy: stored.name,
          enclave: out.enclave,
          certificate: out.certificate,
          serial_number: out.serial,
          not_before: out.notBefore.toISOString(),
          expiration: Math.floor(out.notAfter.getTime() / 1000),
          identity_ca: cfg.identity.certificate,
          permissions_ca: cfg.permissions.certificate,
          identity_ca_chain: cfg.identity.chain,
          permissions_ca_chain: cfg.permissions.chain,
          governance_xml: cfg.governanceXml,
          governance_p7s: cfg.governanceP7s,
          permissions_xml: out.permissionsXml,
          permissions_p7s: out.permissionsP7s,
        });
      },
    },

    // --- revocation of fleet-issued enclave certificates ---
    {
      method: "POST",
      url: "/v1/ros2/enclaves/revoke",
      auth: "token",
      handler: async (ctx) => {
        const req = readRevoke(ctx.body);
        await d.registry.get(req.deviceId); // an unknown device is FR_DEVICE_NOT_FOUND, not an empty success
        const out = await d.revocations.revoke(() => store.requireConfig(), req);
        await ctx.auditEvent(
          "ros2.revoke",
          {
            device_id: req.deviceId,
            enclave: req.enclave ?? "",
            reason: req.reason ?? "",
            revoked: out.revoked.length,
          },
          { serials: out.revoked },
        );
        return envelope({
          device_id: req.deviceId,
          enclave: req.enclave ?? null,
          revoked_serials: out.revoked,
          serials: out.serials,
          crl_number: out.crlNumber ?? null,
        });
      },
    },
    crlRoute("/v1/ros2/crl", false),
    crlRoute("/v1/ros2/crl/pem", true),
  ];

  /** The identity CA's CRL without a token, as pki/crl: relying parties and robots fetch it. */
  function crlRoute(url: string, pem: boolean): RouteSpec {
    return {
      method: "GET",
      url,
      auth: "none",
      handler: async (): Promise<RouteResult> => {
        const crl = await d.revocations.current(await store.requireConfig());
        const headers = {
          "cache-control": `max-age=${Math.max(0, Math.floor((crl.nextUpdate - core.clock.now().getTime()) / 1000))}`,
        };
        return pem
          ? {
              kind: "raw",
              status: 200,
              body: crlPem(crl.der),
              contentType: "application/x-pem-file",
              headers,
            }
          : { kind: "raw", status: 200, body: crl.der, contentType: "application/pkix-crl", headers };
      },
    };
  }
}
