/**
 * The commit delay the server's logs use (the audit file and SQLite's WAL), applied while the event loop
 * is busy (see GroupSync's `busy`). Measured on the development VM at 16 concurrent KV writes against no
 * delay, in alternating runs: 0.8 ms gave more writes per second in five of six and then four of four
 * (+6% to +30%; about half as many syncs); 0.4 ms changed nothing measurable.
 */
export const SYNC_GAP_MS = 0.8;

/**
 * Group commit for a file that is written synchronously and synced asynchronously: callers note what they
 * wrote with `wrote()` and wait with `durable()`; one sync (fdatasync on the thread pool) covers every write
 * made before it started, and the next one starts once the previous one has ended (and, with `gapMs`, no
 * sooner than `gapMs` after it started) while anything is unsynced. A failed sync fails every waiter and
 * every later `durable()` with the same error (fail closed).
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
   * someone waits for is never put off by it.
   *
   * `gapMs`: the least time from one sync's start to the next one's (a commit delay). Under a stream of
   * durable writes a sync that starts the moment the previous one ends covers only what arrived during
   * it; waiting out the gap lets more writes share each sync, and every fdatasync spared is kernel and
   * thread-pool CPU the requests get back. A sync on an idle file (the last one started longer ago than
   * the gap) starts at once, so a lone write pays nothing.
   *
   * `busy`: whether the gap applies now. The gap pays off only while the event loop is busy: syncs then
   * cost CPU the requests need, and the loop gathers waiters anyway. On a loop with time to spare it only
   * adds latency, and with a fixed number of clients each waiting on its request, latency is throughput
   * (a loop-load sampler, src/util/loop-load.ts). Always, when not given.
   */
  constructor(
    private readonly sync: () => Promise<void>,
    private readonly lazyMs = 0,
    private readonly gapMs = 0,
    private readonly busy: () => boolean = () => true,
  ) {}

  private lastStart = Number.NEGATIVE_INFINITY;
  private gapTimer: NodeJS.Timeout | undefined;

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
    if (this.timer || this.gapTimer) {
      clearTimeout(this.timer);
      clearTimeout(this.gapTimer);
      this.timer = undefined;
      this.gapTimer = undefined;
      if (this.error === undefined) this.start(true);
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

  private start(now = false): void {
    if (this.running || this.writtenGen <= this.syncedGen) return;
    if (this.gapMs > 0 && !now && this.busy()) {
      const wait = this.lastStart + this.gapMs - performance.now();
      if (wait > 0) {
        this.gapTimer ??= setTimeout(() => {
          this.gapTimer = undefined;
          if (this.error === undefined) this.start(true);
        }, wait);
        return;
      }
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.gapTimer) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    }
    this.lastStart = performance.now();
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
