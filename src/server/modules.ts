import { fleetModule } from "../enroll/index.js";
import { pkiModule } from "../pki/index.js";
import { secretsModule } from "../secrets/index.js";
import { updatesModule } from "../updates/index.js";
import type { FeatureModule } from "./main.js";

/**
 * The feature modules the server runs, in order. Each feature (pki, devices, ros2, secrets, updates)
 * exports one FeatureModule from its index.ts and adds one line here.
 */
export function defaultModules(): FeatureModule[] {
  const pki = pkiModule();
  return [pki, fleetModule(() => pki.services), updatesModule(), secretsModule()];
}
