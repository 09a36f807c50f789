import { fail } from "../../errors/index.js";
import { type RouteContext, type RouteResult, empty, envelope } from "../../server/types.js";
import type { Mount } from "../mounts.js";
import { checkSecretPath } from "../paths.js";
import { checkSize } from "./body.js";
import type { Kv1Store } from "./kv1-store.js";

/** KV v1 as Vault's: the body is the secret; GET, POST/PUT, LIST and DELETE on the path itself. */
export async function kv1(ctx: RouteContext, mount: Mount, rest: string, kv: Kv1Store): Promise<RouteResult> {
  switch (ctx.method) {
    case "LIST": {
      const prefix = checkSecretPath(rest, { allowEmpty: true, allowTrailingSlash: true });
      const keys = await kv.list(mount, prefix ? prefix + "/" : "");
      if (keys.length === 0) fail("FR_NOT_FOUND", `nothing under ${mount.path}${rest}`);
      return envelope({ keys });
    }
    case "GET":
    case "HEAD": {
      const path = checkSecretPath(rest);
      const data = await kv.get(mount, path);
      if (!data) fail("FR_NOT_FOUND", `no secret at ${mount.path}${path}`);
      // Vault's KV v1 reports its mount's default lease as a refresh hint (768h unless tuned).
      return envelope(data, { leaseDuration: mount.config.default_lease_ttl || 768 * 3600 });
    }
    case "POST":
    case "PUT": {
      const path = checkSecretPath(rest);
      if (Object.keys(ctx.body).length === 0)
        fail("FR_VALIDATION", "missing data: send the secret as a JSON object");
      checkSize(ctx.body);
      await kv.put(mount, path, ctx.body);
      return empty();
    }
    case "DELETE":
      await kv.delete(mount, checkSecretPath(rest));
      return empty();
    default:
      fail("FR_METHOD_NOT_ALLOWED", `${ctx.method} is not supported on a KV v1 path`);
  }
}
