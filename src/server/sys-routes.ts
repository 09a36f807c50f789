import { FleetError } from "../errors/index.js";
import type { SealStatus } from "../seal/index.js";
import type { Clock } from "../util/clock.js";
import { empty, raw, type RouteSpec } from "./types.js";

/** Seal status in the shape of Vault's sys/seal-status. */
export type SealStatusBody = SealStatus;

/** What the sys routes need from the seal and the rest of the core; main.ts wires it. */
export interface SysDeps {
  clock: Clock;
  version: string;
  clusterName: string;
  status(): SealStatusBody;
  /** Initializes: returns the unseal key shares (hex and base64) and the root token. */
  init(req: {
    secret_shares: number;
    secret_threshold: number;
  }): Promise<{ keys: string[]; keys_base64: string[]; root_token: string; recovery: boolean }>;
  submitShare(key: string): Promise<SealStatusBody>;
  resetProgress(): void;
  seal(): Promise<void>;
  auditHash(input: string): string;
  /** Adds a barrier keyring term (sys/rotate). */
  rotate(): Promise<{ term: number; install_time: string }>;
  keyStatus(): { term: number; install_time: string };
}

/**
 * Vault-compatible sys/init, sys/unseal, sys/seal, sys/seal-status, sys/health and sys/audit-hash.
 * Status codes and bodies follow Vault's API so hvac, node-vault and the vault CLI work unchanged.
 */
export function sysRoutes(deps: SysDeps): RouteSpec[] {
  return [
    {
      method: "GET",
      url: "/v1/sys/init",
      auth: "none",
      whileSealed: true,
      handler: async () => raw({ initialized: deps.status().initialized }),
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/init",
      auth: "none",
      whileSealed: true,
      handler: async (ctx) => {
        const b = ctx.body;
        // Shamir: the operator says how the root key is split, as Vault requires. An auto-unseal seal
        // (the recovery shares) defaults to 5 and 3, as Vault's CLI does.
        const shamir = deps.status().type === "shamir";
        const shares = intField(
          b.secret_shares ?? b.recovery_shares,
          "secret_shares",
          shamir ? undefined : 5,
        );
        const threshold = intField(
          b.secret_threshold ?? b.recovery_threshold,
          "secret_threshold",
          shamir ? undefined : 3,
        );
        if (b.pgp_keys || b.root_token_pgp_key) {
          throw new FleetError(
            "FR_VALIDATION",
            "PGP-encrypted key shares are not supported; omit pgp_keys and root_token_pgp_key",
          );
        }
        const out = await deps.init({ secret_shares: shares, secret_threshold: threshold });
        await ctx.auditEvent("seal.init", { shares, threshold, type: deps.status().type });
        const body: Record<string, unknown> = {
          keys: out.keys,
          keys_base64: out.keys_base64,
          root_token: out.root_token,
        };
        if (out.recovery) {
          body.recovery_keys = out.keys;
          body.recovery_keys_base64 = out.keys_base64;
        }
        return raw(body);
      },
    },
    {
      method: "GET",
      url: "/v1/sys/seal-status",
      auth: "none",
      whileSealed: true,
      handler: async () => raw(deps.status()),
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/unseal",
      auth: "none",
      whileSealed: true,
      rateLimit: "unseal",
      redact: ["key"],
      handler: async (ctx) => {
        const b = ctx.body;
        if (!deps.status().initialized)
          throw new FleetError(
            "FR_NOT_INITIALIZED",
            "initialize it first with sys/init (fleetroot operator init)",
          );
        if (b.reset === true) {
          deps.resetProgress();
          await ctx.auditEvent("seal.unseal_reset");
          return raw(deps.status());
        }
        if (typeof b.key !== "string" || !b.key) {
          throw new FleetError(
            "FR_VALIDATION",
            'missing unseal key: send {"key": "<share>"} or {"reset": true}',
          );
        }
        const wasSealed = deps.status().sealed;
        try {
          const status = await deps.submitShare(b.key);
          if (wasSealed && !status.sealed) await ctx.auditEvent("seal.unseal", { progress: status.progress });
          else await ctx.auditEvent("seal.unseal_share", { progress: status.progress, threshold: status.t });
          return raw(status);
        } catch (e) {
          const code = e instanceof FleetError ? e.code : "FR_INTERNAL";
          await ctx.auditEvent("seal.unseal_failed", { code });
          throw e;
        }
      },
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/seal",
      auth: "token",
      capability: "sudo",
      handler: async (ctx) => {
        await ctx.auditEvent("seal.seal", { accessor_known: ctx.auth !== undefined });
        await deps.seal();
        return empty();
      },
    },
    {
      method: ["GET", "HEAD"],
      url: "/v1/sys/health",
      auth: "none",
      whileSealed: true,
      handler: async (ctx) => {
        const s = deps.status();
        const q = ctx.query;
        // Every code given is checked, as Vault does: a typo is an error, not a silent default.
        const codes = {
          uninit: codeFrom(q, "uninitcode", 501),
          sealed: codeFrom(q, "sealedcode", 503),
          active: codeFrom(q, "activecode", 200),
          standby: codeFrom(q, "standbycode", 429),
        };
        const status = !s.initialized ? codes.uninit : s.sealed ? codes.sealed : codes.active;
        const body = {
          initialized: s.initialized,
          sealed: s.sealed,
          standby: false,
          performance_standby: false,
          replication_performance_mode: "disabled",
          replication_dr_mode: "disabled",
          server_time_utc: Math.floor(deps.clock.now().getTime() / 1000),
          version: deps.version,
          cluster_name: deps.clusterName,
          cluster_id: "",
        };
        return raw(body, status, "application/json");
      },
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/rotate",
      auth: "token",
      capability: "sudo",
      handler: async (ctx) => {
        const status = await deps.rotate();
        await ctx.auditEvent("barrier.rotate", { term: status.term });
        return empty();
      },
    },
    {
      method: "GET",
      url: "/v1/sys/key-status",
      auth: "token",
      handler: async () => {
        const s = deps.keyStatus();
        return raw({
          term: s.term,
          install_time: s.install_time,
          encryptions: null,
          data: { term: s.term, install_time: s.install_time },
        });
      },
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/audit-hash/*",
      auth: "token",
      capability: "sudo",
      policyPath: (ctx) => ctx.path,
      handler: async (ctx) => auditHash(ctx.body, deps),
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/sys/audit-hash",
      auth: "token",
      capability: "sudo",
      handler: async (ctx) => auditHash(ctx.body, deps),
    },
  ];
}

function auditHash(body: Record<string, unknown>, deps: SysDeps) {
  if (typeof body.input !== "string")
    throw new FleetError("FR_VALIDATION", 'missing "input": send {"input": "<string to hash>"}');
  const hash = deps.auditHash(body.input);
  return raw({ hash, data: { hash } });
}

/** A JSON integer field of sys/init; absent means `dflt`, or is an error when there is none. */
function intField(v: unknown, name: string, dflt: number | undefined): number {
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new FleetError(
      "FR_VALIDATION",
      "secret_shares and secret_threshold are required: how many key shares to split the root key " +
        'into and how many of them unseal, e.g. {"secret_shares": 5, "secret_threshold": 3}',
    );
  }
  if (typeof v !== "number" || !Number.isInteger(v)) {
    const got = typeof v === "string" ? `the string ${JSON.stringify(v).slice(0, 40)}` : typeof v;
    throw new FleetError("FR_VALIDATION", `${name} must be a JSON integer, not ${got}`);
  }
  return v;
}

/** Vault's health query overrides: a status code in the query replaces the default one. */
/** A sys/health status-code parameter: a whole number from 200 to 599 (400 otherwise), or the default. */
function codeFrom(q: Readonly<Record<string, string>>, name: string, dflt: number): number {
  const v = q[name];
  if (v === undefined) return dflt;
  const n = /^\d{3}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 200 && n <= 599))
    throw new FleetError("FR_VALIDATION", `${name} must be an HTTP status code from 200 to 599, not "${v}"`);
  return n;
}
