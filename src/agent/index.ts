export {
  fetchVerifiedTarget,
  updateTarget,
  checkIntoto,
  type UpdateClientOptions,
  type VerifiedTarget,
} from "./update.js";
export { applyConfig, configCustom, type ApplyConfigResult, type ConfigAudience } from "./config.js";
export { writeFileAtomic } from "../util/atomic-write.js";
