/** src/enroll public API: the fleet module (devices + enrollment), provisioner types and the PSA helpers agents need. */
export { fleetModule, type FleetHooks, type FleetModule } from "./module.js";
export { type DeviceAuthority, type IssuedChain, pkiAuthority } from "./authority.js";
export { type SignOptions, type EnrollMethod, enrollMethods, deviceNames } from "./sign-options.js";
export {
  type ProvisionerConfig,
  parseProvisioner,
  PSA_PROFILE_2,
  PSA_PROFILE_IOT_1,
} from "./provisioner-config.js";
export { enrollMigrations, type EnrollTables } from "./migrations.js";
export { popMessage } from "./proof.js";
export { psaBinding } from "./provision-psa.js";
export { decodeCbor, scanCbor, type CborLimits } from "./cbor.js";
export {
  parseCoseSign1,
  parsePsaClaims,
  sigStructure,
  cborHead,
  COSE_ES256,
  COSE_ES384,
  COSE_EDDSA,
} from "./psa-token.js";
export { validatePath, parseCert, type PathInput } from "./x509-path.js";
export { EnrollService } from "./service.js";
