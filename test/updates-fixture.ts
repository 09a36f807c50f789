import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Updater } from "tuf-js";
import { UpdatesRepository } from "../src/updates/index.js";
import { ManualClock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

/** A dev-mode server with the updates module on real sockets, and a repository handle on its store. */
export interface UpdatesFixture {
  t: TestServer;
  url: string;
  token: string;
  repos: UpdatesRepository;
  clock: ManualClock;
  dir: string;
  key(name: string): string;
  /** A tuf-js Updater (new per refresh) over the repository, trusting `root` (bytes) or its metadata dir. */
  updater(repo: string, metadataDir: string): Updater;
  close(): Promise<void>;
}

export async function startUpdatesFixture(storage?: string): Promise<UpdatesFixture> {
  const dir = mkdtempSync(join(tmpdir(), "fr-updates-"));
  // tuf-js checks expiry against the real clock, so the server's clock starts at real time.
  const clock = new ManualClock(Date.now());
  const t = await startTestServer(storage ?? `sqlite:${join(dir, "store.sqlite")}`, {
    dev: true,
    seal: { type: "dev" },
    clock,
    dataDir: join(dir, "data"),
    // key(): the keys the tests name in requests live outside the data directory.
    defaults: { keys: { file_dirs: [join(dir, "keys")] } },
  });
  const url = await t.server.listen();
  const repos = new UpdatesRepository({
    store: t.server.core.store,
    keys: t.server.core.keys,
    clock,
    requestKeyPolicy: t.server.core.requestKeyPolicy,
  });
  return {
    t,
    url,
    token: t.server.devRootToken ?? "",
    repos,
    clock,
    dir,
    key: (name) => `file:${join(dir, "keys", `${name}.pem`)}`,
    updater: (repo, metadataDir) =>
      new Updater({
        metadataDir,
        metadataBaseUrl: `${url}/v1/updates/${repo}/metadata/`,
        targetBaseUrl: `${url}/v1/updates/${repo}/targets/`,
        config: { fetchRetries: 0, fetchTimeout: 5000 },
      }),
    async close() {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
