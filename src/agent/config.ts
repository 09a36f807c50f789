import path from "node:path";
import { parse as parseYaml } from "yaml";
import { fail } from "../errors/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { checkIntoto, fetchVerifiedTarget, type UpdateClientOptions } from "./update.js";

/** Who a configuration target is for, as its custom metadata says (`custom.fleetroot`). */
export interface ConfigAudience {
  kind: "config";
  devices?: string[];
  labels?: string[];
  format?: "yaml" | "json";
}

/** The custom metadata to publish a configuration file with. */
export function configCustom(a: Omit<ConfigAudience, "kind">): { fleetroot: ConfigAudience } {
  return { fleetroot: { kind: "config", ...a } };
}

export interface ApplyConfigResult {
  applied: boolean;
  reason: string;
  sha256: string;
}

/**
 * Fetches a configuration target through the TUF workflow, checks it is meant for this device (by id or
 * label), that it parses, and any in-toto layout; only then replaces `outFile` atomically.
 */
export async function applyConfig(
  opts: UpdateClientOptions & { layoutKeys?: string[] },
  name: string,
  outFile: string,
  me: { device: string; labels?: string[] },
): Promise<ApplyConfigResult> {
  const t = await fetchVerifiedTarget(opts, name);
  const a = t.custom.fleetroot as ConfigAudience | undefined;
  if (!a || a.kind !== "config") return fail("FR_UPDATES_VERIFY", `${name} is not a configuration target`);
  const forMe =
    (a.devices ?? []).includes(me.device) || (a.labels ?? []).some((l) => (me.labels ?? []).includes(l));
  if (!forMe)
    return { applied: false, reason: `not for device ${me.device} or its labels`, sha256: t.sha256 };
  await checkIntoto(opts, t);
  const format = a.format ?? (/\.json$/i.test(name) ? "json" : "yaml");
  try {
    if (format === "json") JSON.parse(t.content.toString("utf8"));
    else parseYaml(t.content.toString("utf8"));
  } catch (e) {
    return fail("FR_UPDATES_VERIFY", `${name} is signed but is not valid ${format}: ${(e as Error).message}`);
  }
  await writeFileAtomic(path.resolve(outFile), t.content, 0o640);
  return { applied: true, reason: "verified and written", sha256: t.sha256 };
}
