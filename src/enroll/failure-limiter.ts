import type { Clock } from "../util/clock.js";

/**
 * Counts failed proofs per client address in fixed one-minute windows; once a client reaches the limit,
 * further attempts are refused until the window ends. Slows token guessing without touching the store.
 */
export class FailureLimiter {
  private window = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly clock: Clock,
    private readonly windowMs = 60_000,
  ) {}

  private roll(): void {
    const w = Math.floor(this.clock.now().getTime() / this.windowMs);
    if (w !== this.window) {
      this.window = w;
      this.counts = new Map();
    }
  }

  blocked(client: string): boolean {
    this.roll();
    return (this.counts.get(client) ?? 0) >= this.limit;
  }

  record(client: string): void {
    this.roll();
    // Bounded memory: past 100k distinct clients, new ones are not tracked (they still pay per attempt).
    if (this.counts.size > 100_000 && !this.counts.has(client)) return;
    this.counts.set(client, (this.counts.get(client) ?? 0) + 1);
  }
}
