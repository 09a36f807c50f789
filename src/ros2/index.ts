/**
 * src/ros2 public API: SROS2-compatible keystores (docs/ros2.md) — policies → DDS permissions, governance,
 * S/MIME signing with any key URI, enclaves (file or PKCS#11 keys), revocation and verification.
 */
export {
  type ParsePolicyOptions,
  type Policy,
  type PolicyEnclave,
  type PolicyProfile,
  type PolicyRuleSet,
  type Qualifier,
  type RuleAttribute,
  loadPolicyFile,
  parsePolicy,
} from "./policy.js";
export {
  type DdsCriteria,
  type DdsGrant,
  type DdsRule,
  type DomainSpec,
  type GrantOptions,
  ddsDateTime,
  fullyQualified,
  grantsFromPolicy,
  permissionsXml,
} from "./permissions.js";
export {
  type BasicProtectionKind,
  type GovernanceOptions,
  type ProtectionKind,
  type TopicRuleOptions,
  governanceXml,
  parseDomains,
  protectionKinds,
} from "./governance.js";
export { type SmimeVerification, canonicalText, signSmime, verifySmime } from "./smime.js";
export {
  type CaHandle,
  type KeystoreCreateOptions,
  type KeystoreDeps,
  type KeystoreState,
  type RevokedEntry,
  Ros2Keystore,
} from "./keystore.js";
export {
  type EnclaveBatchOptions,
  type EnclaveCreateOptions,
  type EnclaveInfo,
  type EnclaveRequest,
  type PermissionsOptions,
  createEnclave,
  createEnclaves,
  listEnclaves,
  requireEnclave,
  setPermissions,
} from "./enclave.js";
export { type RevokeOptions, revokeEnclave } from "./revoke.js";
export { type VerifyProblem, type VerifyReport, verifyKeystore } from "./verify.js";
export { checkEnclaveName, enclaveDir, files as keystoreFiles } from "./layout.js";
export { defaultPolicyFor } from "./default-policy.js";
