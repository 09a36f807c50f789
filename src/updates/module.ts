import type { CoreServices, FeatureModule } from "../server/main.js";
import { updatesMigrations } from "./migrations.js";
import { OnlineRefresher } from "./refresher.js";
import { UpdatesRepository } from "./repository.js";
import { updatesRoutes } from "./routes.js";

/** How often each node checks whether timestamp and snapshot need re-signing. */
const refreshIntervalMs = 60_000;

/** The updates feature: TUF repositories served under /v1/updates, kept fresh by a scheduled job. */
export function updatesModule(opts: { intervalMs?: number } = {}): FeatureModule {
  let refresher: OnlineRefresher | undefined;
  let repos: UpdatesRepository | undefined;
  const reposFor = (core: CoreServices) =>
    (repos ??= new UpdatesRepository({
      store: core.store,
      keys: core.keys,
      clock: core.clock,
      requestKeyPolicy: core.requestKeyPolicy,
    }));
  return {
    name: "updates",
    migrations: updatesMigrations,
    routes: (core) => updatesRoutes(reposFor(core)),
    onUnseal(core) {
      refresher ??= new OnlineRefresher({
        store: core.store,
        clock: core.clock,
        repos: reposFor(core),
        intervalMs: opts.intervalMs ?? refreshIntervalMs,
      });
      refresher.start();
      return Promise.resolve();
    },
    async onSeal() {
      await refresher?.stop();
    },
    async stop() {
      await refresher?.stop();
    },
  };
}
