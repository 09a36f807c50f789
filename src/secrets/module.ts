import type { CoreServices, FeatureModule } from "../server/main.js";
import type { RouteSpec } from "../server/types.js";
import { certRoutes } from "./cert/cert-routes.js";
import { CertCrls } from "./cert/crls.js";
import type { RevocationCheck } from "./cert/login.js";
import { CertRoles } from "./cert/roles.js";
import { engineRoute } from "./engine-route.js";
import { Kv1Store } from "./kv/kv1-store.js";
import { DEFAULT_READ_CACHE_KEYS, Kv2Store } from "./kv/kv2-store.js";
import { secretsMigrations } from "./migrations.js";
import { mountRoutes } from "./mount-routes.js";
import { MountTable } from "./mounts.js";
import { wrappingRoutes } from "./wrapping/wrap-routes.js";
import { WrapStore } from "./wrapping/wrap-store.js";

export interface SecretsModuleOptions {
  /** Revocation of certificates the PKI issued, consulted by cert login next to configured CRLs. */
  readonly revocation?: RevocationCheck;
}

interface Services {
  mounts: MountTable;
  kv2: Kv2Store;
  kv1: Kv1Store;
  wraps: WrapStore;
  roles: CertRoles;
  crls: CertCrls;
}

/**
 * The secrets module: KV v1/v2 mounts, response wrapping and certificate login, on the core's store,
 * barrier, tokens and policies. One instance per server.
 */
export function secretsModule(opts: SecretsModuleOptions = {}): FeatureModule {
  const byCore = new WeakMap<CoreServices, Services>();
  const all = new Set<Services>();
  const services = (core: CoreServices): Services => {
    let s = byCore.get(core);
    if (!s) {
      s = {
        mounts: new MountTable(core.store, core.clock),
        kv2: new Kv2Store(core.store, core.barrier, core.clock, {
          readCacheKeys: core.config.secrets?.kv_cache_keys ?? DEFAULT_READ_CACHE_KEYS,
        }),
        kv1: new Kv1Store(core.store, core.barrier),
        wraps: new WrapStore(core.store, core.barrier, core.clock),
        roles: new CertRoles(core.store, core.clock),
        crls: new CertCrls(core.store, core.clock),
      };
      byCore.set(core, s);
      all.add(s);
    }
    return s;
  };
  return {
    name: "secrets",
    migrations: secretsMigrations,
    routes(core): RouteSpec[] {
      const s = services(core);
      return [
        ...mountRoutes(core, s.mounts),
        ...wrappingRoutes(core, s.wraps),
        ...certRoutes(core, s.roles, s.crls, opts.revocation),
        engineRoute(s),
      ];
    },
    async onUnseal(core) {
      await services(core).mounts.ensureDefaults();
    },
    onSeal() {
      for (const s of all) s.kv2.forgetAll();
      return Promise.resolve();
    },
    wrapper(core) {
      const { wraps } = services(core);
      return (ctx, result, ttl) =>
        wraps.wrap(
          {
            ...(result.data !== undefined ? { data: result.data } : {}),
            ...(result.auth !== undefined ? { auth: result.auth } : {}),
            ...(result.warnings ? { warnings: result.warnings } : {}),
            ...(result.leaseDuration ? { leaseDuration: result.leaseDuration } : {}),
            ...(result.renewable ? { renewable: result.renewable } : {}),
          },
          ttl,
          ctx.path,
        );
    },
  };
}
