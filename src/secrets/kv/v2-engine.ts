import { fail } from "../../errors/index.js";
import { type RouteContext, type RouteResult, empty, envelope } from "../../server/types.js";
import type { MountTable, Mount } from "../mounts.js";
import { checkSecretPath } from "../paths.js";
import {
  casOption,
  checkSize,
  customMetadata,
  isObject,
  optBool,
  optDuration,
  optInt,
  secretData,
  versionList,
  versionQuery,
} from "./body.js";
import type { Durability, Kv2Store } from "./kv2-store.js";
import { type KeyMeta, goDuration, isGone, mergePatch, metadataBody, subkeys, versionBody } from "./meta.js";

export interface Kv2Deps {
  readonly kv: Kv2Store;
  readonly mounts: MountTable;
}

const MERGE_PATCH = "application/merge-patch+json";

/**
 * KV v2, path for path and status for status as Vault's engine: config, data, delete, undelete,
 * destroy, metadata and subkeys under the mount. `rest` is the path after the mount ("data/app/db").
 */
export async function kv2(
  ctx: RouteContext,
  mount: Mount,
  rest: string,
  deps: Kv2Deps,
): Promise<RouteResult> {
  const slash = rest.indexOf("/");
  const op = slash < 0 ? rest : rest.slice(0, slash);
  const sub = slash < 0 ? "" : rest.slice(slash + 1);
  const m = ctx.method;
  const write = m === "POST" || m === "PUT";
  const { kv } = deps;

  switch (op) {
    case "config":
      if (sub !== "") break;
      if (m === "GET") return envelope(configBody(mount));
      if (write) {
        const b = ctx.body;
        const kvChange = {
          ...opt("max_versions", optInt(b.max_versions, "max_versions")),
          ...opt("cas_required", optBool(b.cas_required, "cas_required")),
          ...opt("delete_version_after", optDuration(b.delete_version_after, "delete_version_after")),
        };
        await deps.mounts.update(mount.path, { kv: kvChange });
        return empty();
      }
      return notAllowed(ctx);

    case "data": {
      if (m === "LIST") return notAllowed(ctx, "list keys with LIST on metadata/");
      const path = checkSecretPath(sub);
      if (m === "GET" || m === "HEAD") {
        const r = await kv.read(mount, path, versionQuery(ctx.query));
        if (r.kind === "missing") fail("FR_NOT_FOUND", `no secret at ${mount.path}data/${path}`);
        if (r.kind === "gone") return goneResult(r.meta, r.n, r.v);
        return envelope(r.body);
      }
      if (write) {
        const data = secretData(ctx.body);
        const w = await kv.write(mount, path, data, casOption(ctx.body), durable(ctx));
        return envelope(versionBody(w.meta, w.n, w.v));
      }
      if (m === "PATCH") {
        const ct = String(ctx.req.headers["content-type"] ?? "")
          .split(";")[0]
          ?.trim()
          .toLowerCase();
        if (ct !== MERGE_PATCH)
          fail("FR_UNSUPPORTED_MEDIA_TYPE", `PATCH needs Content-Type ${MERGE_PATCH}, not "${ct ?? ""}"`);
        const patch = secretData(ctx.body);
        const w = await kv.write(
          mount,
          path,
          (current) => {
            const next = mergePatch(current, patch) as Record<string, unknown>;
            checkSize(next);
            return next;
          },
          casOption(ctx.body),
          durable(ctx),
        );
        return envelope(versionBody(w.meta, w.n, w.v));
      }
      if (m === "DELETE") {
        await kv.updateMeta(
          mount,
          path,
          (meta, now) => {
            const v = meta.versions[String(meta.current)];
            if (v && !isGone(v, now)) v.deleted = now;
          },
          false,
          durable(ctx),
        );
        return empty();
      }
      return notAllowed(ctx);
    }

    case "delete":
    case "undelete":
    case "destroy": {
      if (!write) return notAllowed(ctx);
      const path = checkSecretPath(sub);
      const versions = versionList(ctx.body);
      await kv.updateMeta(
        mount,
        path,
        (meta, now) => {
          const destroyed: number[] = [];
          for (const n of versions) {
            const v = meta.versions[String(n)];
            if (!v) continue;
            if (op === "delete" && !isGone(v, now)) v.deleted = now;
            if (op === "undelete" && !v.destroyed) v.deleted = 0;
            if (op === "destroy" && !v.destroyed) {
              v.destroyed = true;
              destroyed.push(n);
            }
          }
          return destroyed;
        },
        false,
        durable(ctx),
      );
      return empty();
    }

    case "metadata": {
      if (m === "LIST") {
        const prefix = checkSecretPath(sub, { allowEmpty: true, allowTrailingSlash: true });
        const keys = await kv.list(mount, prefix ? prefix + "/" : "");
        if (keys.length === 0) fail("FR_NOT_FOUND", `nothing under ${mount.path}metadata/${sub}`);
        return envelope({ keys });
      }
      const path = checkSecretPath(sub);
      if (m === "GET" || m === "HEAD") {
        const found = await kv.meta(mount, path);
        if (!found) fail("FR_NOT_FOUND", `no secret at ${mount.path}metadata/${path}`);
        return envelope(metadataBody(found.meta));
      }
      if (write || m === "PATCH") {
        const change = metadataChange(ctx.body, m === "PATCH");
        const touched = await kv.updateMeta(mount, path, (meta) => change(meta), m !== "PATCH", durable(ctx));
        if (!touched) fail("FR_NOT_FOUND", `no secret at ${mount.path}metadata/${path}`);
        return empty();
      }
      if (m === "DELETE") {
        await kv.deleteAll(mount, path);
        return empty();
      }
      return notAllowed(ctx);
    }

    case "subkeys": {
      if (m !== "GET" && m !== "HEAD") return notAllowed(ctx);
      const path = checkSecretPath(sub);
      const depth = optInt(ctx.query.depth, "depth") ?? 0;
      const r = await kv.read(mount, path, versionQuery(ctx.query));
      if (r.kind === "missing") fail("FR_NOT_FOUND", `no secret at ${mount.path}subkeys/${path}`);
      if (r.kind === "gone") return goneResult(r.meta, r.n, r.v, "subkeys");
      return envelope({ subkeys: subkeys(r.body.data, depth), metadata: versionBody(r.meta, r.n, r.v) });
    }
  }
  fail(
    "FR_NOT_FOUND",
    `no handler for route "${ctx.path}": a KV v2 mount serves config, data/, delete/, undelete/, destroy/, metadata/ and subkeys/`,
  );
}

/** A deleted or destroyed version: 404 with the version's metadata in the body, as Vault answers. */
function goneResult(meta: KeyMeta, n: number, v: KeyMeta["versions"][string], field = "data"): RouteResult {
  return { kind: "envelope", status: 404, data: { [field]: null, metadata: versionBody(meta, n, v) } };
}

function configBody(mount: Mount): Record<string, unknown> {
  const c = mount.config.kv;
  return {
    cas_required: c.cas_required,
    delete_version_after: goDuration(c.delete_version_after),
    max_versions: c.max_versions,
  };
}

/** Validates a metadata write up front (nothing stored on bad input) and returns the change to apply. */
function metadataChange(b: Readonly<Record<string, unknown>>, patch: boolean): (meta: KeyMeta) => number[] {
  const maxVersions = optInt(b.max_versions, "max_versions");
  const casRequired = optBool(b.cas_required, "cas_required");
  const dva = optDuration(b.delete_version_after, "delete_version_after");
  const custom = customMetadata(b.custom_metadata, patch);
  return (meta) => {
    if (maxVersions !== undefined) meta.maxVersions = maxVersions;
    if (casRequired !== undefined) meta.casRequired = casRequired;
    if (dva !== undefined) meta.deleteVersionAfter = dva;
    if (custom !== undefined) {
      const next = patch
        ? (mergePatch(meta.custom ?? {}, custom) as Record<string, string>)
        : (custom as Record<string, string>);
      meta.custom = Object.keys(next).length ? next : patch ? null : next;
    }
    return [];
  };
}

/** A change is answered once durable: the store's sync and the response's audit entry are waited for together. */
function durable(ctx: RouteContext): Durability {
  return { durable: (p) => ctx.beforeReply(p) };
}

function notAllowed(ctx: RouteContext, hint?: string): never {
  fail("FR_METHOD_NOT_ALLOWED", `${ctx.method} is not supported on ${ctx.path}${hint ? `; ${hint}` : ""}`);
}

function opt<K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, V>);
}

export { isObject };
