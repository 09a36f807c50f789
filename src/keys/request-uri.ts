/**
 * Key URIs that arrive in API requests (pki `key_ref`, the ROS 2 CA keys, TUF key `uri`s). The server
 * generates or opens what such a URI names, so a request may name only places the operator allowed in the
 * `keys` section of the configuration: a `file:` key under one of `keys.file_dirs`, a PKCS#11 module among
 * `keys.pkcs11_modules` (a module the server loads runs inside its process). URIs from the server's own
 * configuration and from the CLI's offline commands are the operator's own and are not checked here. A
 * `pin-source` file in a request must also lie under keys.file_dirs: the server reads it.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fail } from "../errors/index.js";
import { softHsmModule } from "./pkcs11/backend.js";
import { parseKeyUri, redactKeyUri } from "./uri.js";

/** What a key URI in a request may name; built once from the configuration. */
export interface RequestKeyPolicy {
  /** Absolute directories under which a request's `file:` key may live (keys.file_dirs). */
  readonly fileDirs: readonly string[];
  /** Absolute PKCS#11 module paths a request's `module-path` may name (keys.pkcs11_modules). */
  readonly pkcs11Modules: readonly string[];
}

/** A frozen policy; every path must be absolute (the configuration schema checks them at load). */
export function requestKeyPolicy(opts: {
  fileDirs: readonly string[];
  pkcs11Modules: readonly string[];
}): RequestKeyPolicy {
  const absolute = (p: string) => {
    if (!path.isAbsolute(p)) throw new Error(`requestKeyPolicy: ${p} is not an absolute path`);
    return path.resolve(p);
  };
  return Object.freeze({
    fileDirs: Object.freeze(opts.fileDirs.map(absolute)),
    pkcs11Modules: Object.freeze(opts.pkcs11Modules.map(absolute)),
  });
}

/**
 * The modules a request may name when keys.pkcs11_modules is not set: those the PKCS#11 backend falls back to
 * for a URI without module-path (FLEETROOT_PKCS11_MODULE in `env` when set, and SoftHSM2).
 */
export function defaultPkcs11Modules(env: NodeJS.ProcessEnv): string[] {
  const fromEnv = env.FLEETROOT_PKCS11_MODULE;
  const extra = fromEnv ? path.resolve(fromEnv) : undefined;
  return extra && extra !== softHsmModule ? [softHsmModule, extra] : [softHsmModule];
}

/**
 * A key URI that came in an API request (`field` names it in errors), checked before anything is generated,
 * opened or loaded: a `file:` path must be absolute and lie under one of the policy's directories once `..`
 * and symbolic links are resolved, as must a pkcs11 `pin-source` (the server reads that file); a pkcs11
 * `module-path` must be one of the policy's modules (compared as real paths). A pkcs11 URI without
 * module-path uses the server's default module and is allowed. Errors are
 * FR_KEY_URI (400) and never show a pin-value. Returns the URI unchanged; undefined stays undefined.
 */
export async function requestKeyUri(
  uri: string | undefined,
  field: string,
  policy: RequestKeyPolicy,
): Promise<string | undefined> {
  if (uri === undefined) return undefined;
  const parsed = parseKeyUri(uri);
  const shown = `${field} "${redactKeyUri(uri)}"`;
  switch (parsed.scheme) {
    case "file":
      if (!/^file:\//i.test(uri)) {
        fail(
          "FR_KEY_URI",
          `${shown} is a relative path, which the server would resolve against its own working directory; ` +
            "give an absolute one, such as file:/var/lib/fleetroot/keys/ca.key",
        );
      }
      await checkUnderFileDirs(parsed.path, shown, policy, "key");
      break;
    case "pkcs11":
      if (parsed.modulePath !== undefined) await checkModule(parsed.modulePath, shown, policy);
      if (parsed.pinSource !== undefined)
        await checkUnderFileDirs(parsed.pinSource, shown, policy, "PIN file");
      break;
  }
  return uri;
}

/**
 * A file a request names (a `file:` key, or a pkcs11 URI's `pin-source`) must lie under keys.file_dirs once
 * resolved; checked before the file is read or created, so a refusal tells nothing of whether it exists.
 */
async function checkUnderFileDirs(
  file: string,
  shown: string,
  policy: RequestKeyPolicy,
  what: "key" | "PIN file",
): Promise<void> {
  let where: Location;
  try {
    where = await realLocation(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    return fail(
      "FR_KEY_URI",
      `${shown}: the server cannot resolve ${file} to check where it leads (${code}); name a path under ` +
        "one of the directories in keys.file_dirs of the server configuration",
      { cause: e },
    );
  }
  if ("danglingLink" in where) {
    fail(
      "FR_KEY_URI",
      `${shown}: ${where.danglingLink} is a symbolic link to something that does not exist, so the ${what} would ` +
        `be ${what === "key" ? "made" : "looked for"} elsewhere; ` +
        "name a path under one of the directories in keys.file_dirs of the server configuration",
    );
  }
  for (const dir of policy.fileDirs) {
    const d = await realLocation(dir).catch(() => undefined);
    if (d && "real" in d && isInside(where.real, d.real)) return;
  }
  // The real path is not shown: it would tell the client where the server's symbolic links point.
  const via = where.real === file ? "" : " (through a symbolic link)";
  const allowed =
    policy.fileDirs.length === 0
      ? "no directory is allowed for keys named in requests"
      : `keys named in requests must be under ${policy.fileDirs.join(", ")}`;
  const names = what === "key" ? "names" : "names the PIN file";
  fail(
    "FR_KEY_URI",
    `${shown} ${names} ${file}${via}, which is outside the allowed directories (${allowed}); use a path ` +
      "under one of them, or add the directory to keys.file_dirs in the server configuration",
  );
}

async function checkModule(modulePath: string, shown: string, policy: RequestKeyPolicy): Promise<void> {
  if (!path.isAbsolute(modulePath)) {
    fail(
      "FR_KEY_URI",
      `${shown} gives the relative module-path ${modulePath}, which the server would resolve against its own ` +
        "working directory; give the module's absolute path",
    );
  }
  // The file dlopen would load is the real path; a symbolic link to an allowed module is that module.
  const wanted = await realFile(modulePath);
  for (const m of policy.pkcs11Modules) if ((await realFile(m)) === wanted) return;
  const allowed =
    policy.pkcs11Modules.length === 0 ? "none is allowed" : `allowed: ${policy.pkcs11Modules.join(", ")}`;
  fail(
    "FR_KEY_URI",
    `${shown} names the PKCS#11 module ${modulePath}, which the server does not load for keys named in ` +
      `requests (${allowed}); add it to keys.pkcs11_modules in the server configuration, or leave ` +
      "module-path out to use the server's default module",
  );
}

/**
 * The file a module path loads: resolved as the backend resolves it (`..` taken lexically, as path.resolve
 * does) and then through symbolic links; when it does not exist, nothing can be loaded from it and the
 * resolved path stands for itself.
 */
async function realFile(p: string): Promise<string> {
  const resolved = path.resolve(p);
  try {
    return await fs.realpath(resolved);
  } catch {
    return resolved;
  }
}

/** Where a path really leads, or the symbolic link on its way that leads nowhere. */
type Location = { readonly real: string } | { readonly danglingLink: string };

/**
 * Where `p` really is: the real path of its deepest existing ancestor (itself when it exists) followed by the
 * parts that do not exist yet, so a symbolic link anywhere on the way is followed. Errors other than a missing
 * part (EACCES, ELOOP) are thrown.
 */
async function realLocation(p: string): Promise<Location> {
  const missing: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return { real: path.join(await fs.realpath(cur), ...missing) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
      if (code === "ENOENT" && (await isSymlink(cur))) return { danglingLink: cur };
      const parent = path.dirname(cur);
      if (parent === cur) throw e;
      missing.unshift(path.basename(cur));
      cur = parent;
    }
  }
}

async function isSymlink(p: string): Promise<boolean> {
  try {
    return (await fs.lstat(p)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Whether `child` lies strictly below `dir` (both absolute and real). */
function isInside(child: string, dir: string): boolean {
  const rel = path.relative(dir, child);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
