/** src/secrets public API: the FeatureModule and the types a caller may need. */
export { secretsModule, type SecretsModuleOptions } from "./module.js";
export type { RevocationCheck } from "./cert/login.js";
export { secretsMigrations, type SecretsTables } from "./migrations.js";
export type { KvConfig, Mount, MountConfig } from "./mounts.js";
export { WRAP_TOKEN_PREFIX, type WrapInfo } from "./wrapping/wrap-store.js";
