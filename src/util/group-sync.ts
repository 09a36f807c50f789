/**
 * Group commit for a file that is written synchronously and synced asynchronously: callers note what they
 * wrote with `wrote()` and wait with `durable()`; one sync (fdatasync on the thread pool) covers every write
 * made before it started, and a new one starts as soon as the previous one ends while anything is unsynced.
 * A failed sync fails every waiter and every later `durable()` with the same error (fail closed).
 */
export class GroupSync {
  private writtenGen = 0;
  private syncedGen = 0;
  private running: Promise<void> | undefined;
  private waiters: Array<{ gen: number; resolve(): void; reject(e: unknown): void }> = [];
  private error: unknown;
  private started = 0;

  constructor(private readonly sync: () => Promise<void>) {}

  /** Records that bytes were written and are not yet synced. */
  wrote(): void {
    this.writtenGen++;
  }

  /** Resolves once everything written before this call is synced (now, if it already is). */
  durable(): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    const gen = this.writtenGen;
    if (gen <= this.syncedGen) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ gen, resolve, reject });
      this.start();
    });
  }

  /** Starts a sync in the background when something is unsynced (so it reaches the disk without a waiter). */
  kick(): void {
    if (this.error === undefined) this.start();
  }

  /** Waits for the sync in flight, if any; never rejects. */
  async settle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Syncs started so far: writes / syncs is the group size. */
  get syncs(): number {
    return this.started;
  }

  get failed(): unknown {
    return this.error;
  }

  private start(): void {
    if (this.running || this.writtenGen <= this.syncedGen) return;
    const gen = this.writtenGen;
    this.started++;
    this.running = this.sync().then(
      () => {
        this.running = undefined;
        this.syncedGen = gen;
        if (this.waiters.length > 0) {
          const still: typeof this.waiters = [];
          for (const w of this.waiters) {
            if (w.gen <= gen) w.resolve();
            else still.push(w);
          }
          this.waiters = still;
        }
        this.start();
      },
      (e: unknown) => {
        this.running = undefined;
        this.error = e;
        for (const w of this.waiters.splice(0)) w.reject(e);
      },
    );
  }
}
