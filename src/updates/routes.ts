import { z } from "zod";
import { fail } from "../errors/index.js";
import { envelope, raw, type RouteContext, type RouteSpec } from "../server/types.js";
import type { UpdatesRepository } from "./repository.js";

const keySpec = z
  .object({
    uri: z.string().max(2048).optional(),
    generate: z.enum(["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072"]).optional(),
    public: z.string().max(16384).optional(),
  })
  .strict();
const keyList = z.array(keySpec).min(1).max(32);
const topRole = z.enum(["root", "targets", "snapshot", "timestamp"]);
const seconds = z
  .number()
  .int()
  .positive()
  .max(10 * 365 * 86400);

const initBody = z
  .object({
    keys: z.object({ root: keyList, targets: keyList, snapshot: keyList, timestamp: keyList }).strict(),
    thresholds: z.partialRecord(topRole, z.number().int().min(1).max(32)).optional(),
    expires: z
      .partialRecord(z.enum(["root", "targets", "snapshot", "timestamp", "delegated"]), seconds)
      .optional(),
    consistent_snapshot: z.boolean().optional(),
  })
  .strict();
const targetBody = z
  .object({
    // Strict: Buffer.from(…, "base64") skips what it cannot read, so a typo would publish other bytes.
    content_base64: z.base64(),
    custom: z.record(z.string(), z.unknown()).optional(),
    role: z.string().max(128).optional(),
  })
  .strict();
const delegateBody = z
  .object({
    name: z.string().max(128).optional(),
    parent: z.string().max(128).optional(),
    keys: keyList,
    threshold: z.number().int().min(1).max(32).optional(),
    paths: z.array(z.string().min(1).max(1024)).max(256).optional(),
    terminating: z.boolean().optional(),
    hash_bins: z
      .object({ bit_length: z.number().int(), prefix: z.string().max(64).optional() })
      .strict()
      .optional(),
  })
  .strict();
const rotateBody = z
  .object({
    role: topRole,
    add: z.array(keySpec).max(32).optional(),
    remove: z
      .array(z.string().regex(/^[0-9a-f]{64}$/))
      .max(32)
      .optional(),
    threshold: z.number().int().min(1).max(32).optional(),
  })
  .strict();
const signBody = z
  .object({ role: z.string().max(128), keys: z.array(z.string().max(2048)).min(1).max(32) })
  .strict();
const importBody = z.object({ metadata: z.record(z.string(), z.unknown()) }).strict();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    fail("FR_VALIDATION", `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}

const repoOf = (ctx: RouteContext) => ctx.params.repo ?? "";
const tail = (ctx: RouteContext) => ctx.params["*"] ?? "";

/**
 * /v1/updates/<repo>/metadata/… and …/targets/… are public (a TUF repository is verified by its
 * signatures, not by who may read it); everything that changes a repository needs a token.
 */
export function updatesRoutes(repos: UpdatesRepository): RouteSpec[] {
  return [
    {
      method: ["GET", "HEAD"],
      url: "/v1/updates/:repo/metadata/:file",
      auth: "none",
      handler: async (ctx) => {
        const body = await repos.readMetadata(repoOf(ctx), ctx.params.file ?? "");
        if (!body) fail("FR_NOT_FOUND", `no metadata ${ctx.params.file ?? ""} in ${repoOf(ctx)}`);
        return {
          kind: "raw",
          body,
          contentType: "application/json",
          headers: { "cache-control": "no-store" },
        };
      },
    },
    {
      method: ["GET", "HEAD"],
      url: "/v1/updates/:repo/targets/*",
      auth: "none",
      handler: async (ctx) => {
        const body = await repos.readTarget(repoOf(ctx), tail(ctx));
        if (!body) fail("FR_NOT_FOUND", `no target ${tail(ctx)} in ${repoOf(ctx)}`);
        return raw(body, 200, "application/octet-stream");
      },
    },
    {
      method: ["PUT", "POST"],
      url: "/v1/updates/:repo/targets/*",
      auth: "token",
      rawBodyTypes: ["application/octet-stream"],
      handler: async (ctx) => {
        let content: Buffer;
        let custom: Record<string, unknown> | undefined;
        let role: string | undefined;
        if (ctx.rawBody) content = ctx.rawBody;
        else {
          const b = parse(targetBody, ctx.body);
          content = Buffer.from(b.content_base64, "base64");
          custom = b.custom;
          role = b.role;
        }
        const [out] = await repos.addTargets(repoOf(ctx), [
          { path: tail(ctx), content, ...(custom ? { custom } : {}), ...(role ? { role } : {}) },
        ]);
        await ctx.auditEvent("updates.target.add", { repo: repoOf(ctx), path: tail(ctx) });
        return envelope(out);
      },
    },
    {
      method: "DELETE",
      url: "/v1/updates/:repo/targets/*",
      auth: "token",
      handler: async (ctx) => {
        await repos.removeTarget(repoOf(ctx), tail(ctx));
        await ctx.auditEvent("updates.target.remove", { repo: repoOf(ctx), path: tail(ctx) });
        return envelope({ removed: tail(ctx) });
      },
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/init",
      auth: "token",
      handler: async (ctx) => {
        const b = parse(initBody, ctx.body);
        const out = await repos.init(repoOf(ctx), {
          keys: b.keys,
          ...(b.thresholds ? { thresholds: b.thresholds } : {}),
          ...(b.expires ? { expires: b.expires } : {}),
          ...(b.consistent_snapshot !== undefined ? { consistentSnapshot: b.consistent_snapshot } : {}),
        });
        await ctx.auditEvent("updates.init", { repo: repoOf(ctx) });
        return envelope(out);
      },
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/delegations",
      auth: "token",
      handler: async (ctx) => {
        const b = parse(delegateBody, ctx.body);
        if (b.hash_bins) {
          await repos.delegateHashBins(repoOf(ctx), {
            bitLength: b.hash_bins.bit_length,
            keys: b.keys,
            ...(b.parent ? { parent: b.parent } : {}),
            ...(b.hash_bins.prefix ? { prefix: b.hash_bins.prefix } : {}),
            ...(b.threshold ? { threshold: b.threshold } : {}),
          });
        } else {
          if (!b.name || !b.paths) fail("FR_VALIDATION", "a delegation needs name and paths (or hash_bins)");
          await repos.delegate(repoOf(ctx), {
            name: b.name,
            keys: b.keys,
            paths: b.paths,
            ...(b.parent ? { parent: b.parent } : {}),
            ...(b.threshold ? { threshold: b.threshold } : {}),
            ...(b.terminating !== undefined ? { terminating: b.terminating } : {}),
          });
        }
        await ctx.auditEvent("updates.delegate", { repo: repoOf(ctx), role: b.name ?? "hash-bins" });
        return envelope({ ok: true });
      },
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/publish",
      auth: "token",
      handler: async (ctx) => {
        const out = await repos.publish(repoOf(ctx));
        await ctx.auditEvent("updates.publish", { repo: repoOf(ctx), published: out.published.length });
        return envelope(out);
      },
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/rotate-key",
      auth: "token",
      handler: async (ctx) => {
        const b = parse(rotateBody, ctx.body);
        const out = await repos.rotateKey(repoOf(ctx), {
          role: b.role,
          ...(b.add ? { add: b.add } : {}),
          ...(b.remove ? { remove: b.remove } : {}),
          ...(b.threshold ? { threshold: b.threshold } : {}),
        });
        await ctx.auditEvent("updates.rotate-key", { repo: repoOf(ctx), role: b.role });
        return envelope(out);
      },
    },
    {
      method: "GET",
      url: "/v1/updates/:repo/pending/:role",
      auth: "token",
      handler: async (ctx) => envelope(await repos.exportPending(repoOf(ctx), ctx.params.role ?? "")),
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/import",
      auth: "token",
      handler: async (ctx) => {
        const b = parse(importBody, ctx.body);
        const out = await repos.importSignatures(repoOf(ctx), JSON.stringify(b.metadata));
        await ctx.auditEvent("updates.import", { repo: repoOf(ctx), role: out.role });
        return envelope(out);
      },
    },
    {
      method: "POST",
      url: "/v1/updates/:repo/sign",
      auth: "token",
      handler: async (ctx) => {
        const b = parse(signBody, ctx.body);
        const out = await repos.signPending(repoOf(ctx), b.role, b.keys);
        await ctx.auditEvent("updates.sign", { repo: repoOf(ctx), role: b.role });
        return envelope(out);
      },
    },
    {
      method: "GET",
      url: "/v1/updates/:repo/status",
      auth: "token",
      handler: async (ctx) => envelope(await repos.status(repoOf(ctx))),
    },
    {
      method: "LIST",
      url: "/v1/updates",
      auth: "token",
      handler: async () => envelope({ keys: await repos.list() }),
    },
  ];
}
