export { configSchema, type Config, type SealConfig } from "./schema.js";
export { loadConfig, type LoadOptions } from "./load.js";
export { resolvePaths, type ResolvedPaths } from "./paths.js";
export { checkClientCaBundle, checkServerCertificateDates } from "./tls.js";
