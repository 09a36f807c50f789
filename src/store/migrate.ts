import { Migrator, type Kysely, type Migration } from "kysely";
import { FleetError, fail } from "../errors/index.js";
import type { MigrationSet } from "./types.js";

/**
 * Applies the union of the modules' migrations in name order, one migration per transaction, so a
 * failing migration leaves nothing of itself behind while the ones before it stay applied.
 */
export async function runMigrations(db: Kysely<object>, sets: readonly MigrationSet[]): Promise<void> {
  const all: Record<string, Migration> = {};
  for (const set of sets) {
    for (const [name, m] of Object.entries(set)) {
      if (all[name] && all[name] !== m) fail("FR_STORE_MIGRATION", `two modules define migration "${name}"`);
      all[name] = m;
    }
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(all) },
    migrationTableName: "fleetroot_migration",
    migrationLockTableName: "fleetroot_migration_lock",
    // Plain code-point order, the same on every machine (the default uses localeCompare).
    nameComparator: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
  });
  // migrateUp() runs exactly one pending migration inside its own transaction (and lock).
  for (;;) {
    const { error, results } = await migrator.migrateUp();
    if (error) {
      if (error instanceof FleetError) throw error;
      const failed = results?.find((r) => r.status === "Error")?.migrationName;
      const reason = error instanceof Error ? error.message : String(error);
      fail(
        "FR_STORE_MIGRATION",
        failed ? `migration "${failed}" failed: ${reason}` : `migrations could not run: ${reason}`,
        { cause: error },
      );
    }
    if (!results || results.length === 0) return;
  }
}
