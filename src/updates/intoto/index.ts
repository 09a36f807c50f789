export type {
  ArtifactRule,
  Artifacts,
  Inspection,
  Layout,
  LayoutKey,
  Link,
  Metablock,
  Step,
} from "./types.js";
export { buildLayout, layoutKey, signLayout, type InspectionInput, type StepInput } from "./layout.js";
export { hashArtifacts, linkFileName, runStep } from "./link.js";
export { applyRules, checkRules, fnmatch } from "./rules.js";
export { verifyFinalProduct, type VerifyOptions } from "./verify.js";
export {
  intotoPayloadType,
  pae,
  provenanceStatement,
  signStatement,
  verifyStatement,
  type DsseEnvelope,
  type Statement,
} from "./dsse.js";
export { intotoCustom, type IntotoCustom } from "./custom.js";
