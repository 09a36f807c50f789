import type { TokenStore } from "./token-store.js";

/** How often expired tokens are removed while the server is unsealed. */
export const TOKEN_TIDY_INTERVAL_MS = 5 * 60_000;

/**
 * Removes expired and used-up tokens (with their subtrees) from the store every `intervalMs` while the
 * server is unsealed, as Vault's expiration manager does. An expired token is refused the moment it
 * expires whether or not this has run; this keeps the table from growing with every token a fleet ever
 * used. A run that fails is reported and tried again at the next interval.
 */
export class TokenTidy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly tokens: Pick<TokenStore, "tidy">,
    private readonly report: (removed: number) => Promise<void>,
    private readonly onError: (e: unknown) => void,
    private readonly intervalMs = TOKEN_TIDY_INTERVAL_MS,
  ) {}

  /** Starts the periodic runs (the first one after one interval); idempotent. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the periodic runs and waits for one in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One run now (none starts while another is in progress); never rejects. */
  runOnce(): Promise<void> {
    this.running ??= (async () => {
      try {
        const removed = await this.tokens.tidy();
        if (removed > 0) await this.report(removed);
      } catch (e) {
        this.onError(e);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
