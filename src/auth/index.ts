export { Authorizer } from "./authorizer.js";
export { authMigrations } from "./migrations.js";
export { Acl, type ParamInput } from "./policy/acl.js";
export { DEFAULT_POLICY, DEFAULT_POLICY_TEXT, ROOT_POLICY } from "./policy/builtin.js";
export { MAX_POLICY_BYTES } from "./policy/hcl.js";
export { CAPABILITIES, type PathRule, type Policy, parsePolicy } from "./policy/policy.js";
export { PolicyStore, type PolicyStoreOptions, policyName } from "./policy/policy-store.js";
export { authBlock } from "./routes/format.js";
export { authRoutes } from "./routes/index.js";
export {
  TOKEN_PREFIX,
  TokenStore,
  type CreateTokenOptions,
  type CreatedToken,
  type TokenInfo,
  type TokenStoreOptions,
  sanitizePolicies,
  sha256hex,
} from "./token/token-store.js";
export { TOKEN_TIDY_INTERVAL_MS, TokenTidy } from "./token/tidy-job.js";
