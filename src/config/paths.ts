import { resolve } from "node:path";
import type { Config } from "./schema.js";

export interface ResolvedPaths {
  dataDir: string;
  storage: string;
  auditPath: string;
  auditKey: string;
  apiAddr: string;
  /** keys.file_dirs, default `<data_dir>/keys`: where a key URI in a request may name a file. */
  keyFileDirs: readonly string[];
}

/** Fills in the defaults that depend on data_dir and listen. */
export function resolvePaths(config: Config): ResolvedPaths {
  const dataDir = resolve(config.data_dir);
  const scheme = config.tls ? "https" : "http";
  return {
    dataDir,
    storage: config.storage ?? `sqlite:${resolve(dataDir, "fleetroot.db")}`,
    auditPath: resolve(config.audit.path ?? resolve(dataDir, "audit.log")),
    auditKey: config.audit.key ?? `file:${resolve(dataDir, "audit-key.pem")}`,
    apiAddr: (config.api_addr ?? `${scheme}://${config.listen}`).replace(/\/+$/, ""),
    // Not data_dir itself: that holds the audit key, the database and the server's own CA keys.
    keyFileDirs: (config.keys?.file_dirs ?? [resolve(dataDir, "keys")]).map((d) => resolve(d)),
  };
}
