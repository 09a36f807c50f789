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

  private timer: NodeJS.Timeout | undefined;

  /**
   * `lazyMs`: how long a background sync (one nobody waits for, see kick) may be put off, so that a
   * stream of non-durable writes costs one sync per `lazyMs` instead of one after another. A sync that
   * someone waits for always starts at once.
   */
  constructor(
    private readonly sync: () => Promise<void>,
    private readonly lazyMs = 0,
  ) {}

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

  /** Syncs in the background when something is unsynced (so it reaches the disk without a waiter). */
  kick(): void {
    if (this.error !== undefined || this.running || this.writtenGen <= this.syncedGen) return;
    if (this.lazyMs <= 0) return this.start();
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.error === undefined) this.start();
    }, this.lazyMs);
    this.timer.unref();
  }

  /** Waits for the sync in flight, if any (a put-off background sync is started now); never rejects. */
  async settle(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      if (this.error === undefined) this.start();
    }
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
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
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
        // Another sync right away for those who wait; a lazy one for what nobody waits for.
        if (this.waiters.length > 0) this.start();
        else this.kick();
      },
      (e: unknown) => {
        this.running = undefined;
        this.error = e;
        for (const w of this.waiters.splice(0)) w.reject(e);
      },
    );
  }
}
