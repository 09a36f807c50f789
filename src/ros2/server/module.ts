/**
 * The fleet side of ROS 2 security as a server feature module: `/v1/ros2/*` (routes.ts). Enrolled devices
 * (src/devices, src/enroll) obtain enclaves over mutual TLS; pki/ is reached through its services (the
 * same instance the fleet module uses), only to cross-sign the ROS 2 CAs and to check revocations.
 */
import { DeviceRegistry } from "../../devices/index.js";
import type { PkiServices } from "../../pki/index.js";
import type { CoreServices, FeatureModule } from "../../server/main.js";
import { CaSigners } from "./cas.js";
import { ros2Routes } from "./routes.js";
import { FleetRos2Store } from "./store.js";

/** `pki`: the running PKI module's services (for ca_source pki and revocation checks). */
export function ros2FleetModule(pki: () => PkiServices | undefined): FeatureModule {
  let signers: CaSigners | undefined;
  return {
    name: "ros2",
    // Everything is kept in the barrier (store.ts): no tables of its own.
    migrations: {},
    routes(core: CoreServices) {
      signers = new CaSigners(core.keys);
      return ros2Routes({
        core,
        store: new FleetRos2Store(core.barrier.view("ros2/fleet/")),
        registry: new DeviceRegistry(core.store, core.clock),
        signers,
        pki,
      });
    },
    async onSeal() {
      // Opened CA keys are dropped with the barrier key; they reopen after unseal.
      signers?.clear();
    },
  };
}
