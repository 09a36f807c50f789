/**
 * The PKI feature module: migrations, routes, and the CRL scheduler, which runs while unsealed and
 * rebuilds every issuer's complete CRL when its rebuild interval has passed or its nextUpdate nears.
 */
import type { CoreServices, FeatureModule } from "../server/main.js";
import { pkiMigrations } from "./migrations.js";
import { certRoutes } from "./routes-certs.js";
import { issuerRoutes } from "./routes-issuers.js";
import { revocationRoutes } from "./routes-revocation.js";
import { type PkiServices, pkiServices } from "./services.js";

/** How often the scheduler looks; what it does is decided from the injected clock. */
const TICK_MS = 60_000;

export interface PkiModule extends FeatureModule {
  /** The services, once routes() has run (tests drive the scheduler through `tick`). */
  readonly services: PkiServices | undefined;
  /** One scheduler pass: rebuild complete CRLs that are due. */
  tick(): Promise<void>;
}

export function pkiModule(): PkiModule {
  let services: PkiServices | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  const mod: PkiModule = {
    name: "pki",
    migrations: pkiMigrations,
    get services() {
      return services;
    },
    routes(core: CoreServices) {
      services = pkiServices(core);
      return [
        ...issuerRoutes(services, core.requestKeyPolicy),
        ...certRoutes(services),
        ...revocationRoutes(services),
      ];
    },
    async onUnseal() {
      if (!services) return;
      await services.issuers.reload();
      stopTimer();
      timer = setInterval(() => void mod.tick().catch(() => undefined), TICK_MS);
      timer.unref();
    },
    async onSeal() {
      stopTimer();
      services?.issuers.clear();
      services?.crl.clear();
      services?.ocsp.clear();
    },
    async stop() {
      stopTimer();
      await services?.authority.close();
    },
    async tick() {
      if (services) await services.crl.tick(services.issuers.all());
    },
  };
  return mod;
}
