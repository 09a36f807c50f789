export { canonicalJson, canonicalString, compareCodePoints } from "./canonical-json.js";
export {
  keyIdOf,
  tufKeyFromSpki,
  tufKeyFromText,
  tufSigner,
  verifyTufSignature,
  type TufKey,
  type TufSigner,
} from "./keys.js";
export {
  addSignatures,
  meetsThreshold,
  parseEnvelope,
  serialize,
  validSigners,
  type Envelope,
  type RootSigned,
  type TargetsSigned,
  type TopRole,
} from "./metadata.js";
export { binFor, checkTargetPath, pathMatches } from "./patterns.js";
export { UpdatesRepository, type InitOptions, type PublishResult, type TargetInput } from "./repository.js";
export type { KeySpec } from "./signers.js";
export { Lease } from "./lease.js";
export { OnlineRefresher } from "./refresher.js";
export { updatesMigrations } from "./migrations.js";
export { updatesModule } from "./module.js";
export * as intoto from "./intoto/index.js";
