import { resolve } from "node:path";
import type { Config } from "./schema.js";

export interface ResolvedPaths {
  dataDir: string;
  storage: string;
  auditPath: string;
  auditKey: string;
  apiAddr: string;
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
  };
}
