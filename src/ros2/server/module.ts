/**
 * The fleet side of ROS 2 security as a server feature module: `/v1/ros2/*` (routes.ts). Enrolled devices
 * (src/devices, src/enroll) obtain enclaves over mutual TLS; pki/ is reached through its services (the
 * same instance the fleet module uses), only to cross-sign the ROS 2 CAs and to check revocations.
 */
import { DeviceRegistry } from "../../devices/index.js";
import type { PkiServices } from "../../pki/index.js";
import type { CoreServices, FeatureModule } from "../../server/main.js";
import { CaSigners } from "./cas.js";
import { FleetRevocations } from "./revocation.js";
import { ros2Routes } from "./routes.js";
import { FleetRos2Store } from "./store.js";

export interface Ros2FleetModule extends FeatureModule {
  /**
   * Revokes every fleet-issued enclave certificate of `deviceId` (cessationOfOperation) and re-signs the
   * CRL; the fleet module calls it when the device is decommissioned. Idempotent; returns the serials
   * revoked now. A no-op before the module has started or when the device has no enclaves.
   */
  revokeDevice(deviceId: string): Promise<string[]>;
}

/** `pki`: the running PKI module's services (for ca_source pki and revocation checks). */
export function ros2FleetModule(pki: () => PkiServices | undefined): Ros2FleetModule {
  let signers: CaSigners | undefined;
  let running: { core: CoreServices; store: FleetRos2Store; revocations: FleetRevocations } | undefined;
  return {
    name: "ros2",
    // Everything is kept in the barrier (store.ts, revocation.ts): no tables of its own.
    migrations: {},
    routes(core: CoreServices) {
      signers = new CaSigners(core.keys);
      const view = core.barrier.view("ros2/fleet/");
      const store = new FleetRos2Store(view);
      const revocations = new FleetRevocations(view, signers, core.clock);
      running = { core, store, revocations };
      return ros2Routes({
        core,
        store,
        registry: new DeviceRegistry(core.store, core.clock),
        signers,
        pki,
        revocations,
      });
    },
    async revokeDevice(deviceId: string) {
      if (!running) return [];
      const { core, store, revocations } = running;
      const out = await revocations.revoke(() => store.requireConfig(), {
        deviceId,
        reason: "cessationOfOperation",
      });
      if (out.revoked.length) {
        // Outside a ros2 route there is no request context: the event goes to the audit log directly.
        await core.audit.log({
          type: "event",
          event: {
            name: "ros2.revoke",
            fields: { device_id: deviceId, reason: "cessationOfOperation", revoked: out.revoked.length },
            data: { serials: out.revoked },
          },
        });
      }
      return out.revoked;
    },
    async onSeal() {
      // Opened CA keys are dropped with the barrier key; they reopen after unseal.
      signers?.clear();
    },
  };
}
