/**
 * The fleet feature module: the device registry (src/devices) and enrollment (this module), with one
 * set of migrations and routes. pki/ is reached only through the authority seam (authority.ts).
 */
import { type DeviceLifecycle, DeviceRegistry, deviceMigrations, deviceRoutes } from "../devices/index.js";
import type { PkiServices } from "../pki/index.js";
import type { CoreServices, FeatureModule } from "../server/main.js";
import { type DeviceAuthority, pkiAuthority } from "./authority.js";
import { FailureLimiter } from "./failure-limiter.js";
import { IdentityStore } from "./identity-store.js";
import { JoinTokenStore } from "./join-tokens.js";
import { enrollMigrations } from "./migrations.js";
import { NonceStore } from "./nonces.js";
import { ProvisionerStore } from "./provisioner-store.js";
import { enrollRoutes } from "./routes.js";
import { EnrollService } from "./service.js";

/** Failed proofs allowed per client address per minute before enrollment answers 429. */
const FAILURES_PER_MINUTE = 20;

export interface FleetModule extends FeatureModule {
  readonly service: EnrollService | undefined;
}

/** `pki`: the running PKI module's services (the same instance, so CRL and OCSP see revocations at once). */
export interface FleetHooks {
  /** Runs after a decommissioning revoked the device's certificates (ros2 revokes its enclaves); idempotent. */
  readonly onDecommission?: (deviceId: string) => Promise<unknown>;
}

export function fleetModule(
  pki: () => PkiServices | undefined,
  authority?: DeviceAuthority,
  hooks: FleetHooks = {},
): FleetModule {
  let service: EnrollService | undefined;
  return {
    name: "fleet",
    migrations: { ...deviceMigrations, ...enrollMigrations },
    get service() {
      return service;
    },
    routes(core: CoreServices) {
      const registry = new DeviceRegistry(core.store, core.clock);
      const provisioners = new ProvisionerStore(core.store, core.clock);
      const identities = new IdentityStore(core.store, core.clock);
      const tokens = new JoinTokenStore(core.store, core.clock);
      const nonces = new NonceStore(core.store, core.clock);
      const deviceAuthority = authority ?? pkiAuthority(pki);
      service = new EnrollService({
        store: core.store,
        clock: core.clock,
        registry,
        provisioners,
        identities,
        tokens,
        nonces,
        authority: deviceAuthority,
      });
      const failures = new FailureLimiter(FAILURES_PER_MINUTE, core.clock);
      return [
        ...deviceRoutes(registry, withDecommissionHook(service, hooks.onDecommission)),
        ...enrollRoutes({
          store: core.store,
          registry,
          provisioners,
          identities,
          tokens,
          nonces,
          service,
          failures,
          authority: deviceAuthority,
        }),
      ];
    },
  };
}

/** A failing hook fails the request; decommissioning again runs the hook again (it must be idempotent). */
function withDecommissionHook(service: EnrollService, hook: FleetHooks["onDecommission"]): DeviceLifecycle {
  if (!hook) return service;
  return {
    async decommission(id) {
      const out = await service.decommission(id);
      await hook(id);
      return out;
    },
  };
}
