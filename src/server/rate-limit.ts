import type { Clock } from "../util/clock.js";

/** Fixed-window counter per client address; bounded memory (old windows are dropped). */
export class RateLimiter {
  private window = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  take(client: string): boolean {
    const w = Math.floor(this.clock.now().getTime() / this.windowMs);
    if (w !== this.window) {
      this.window = w;
      this.counts = new Map();
    }
    const n = (this.counts.get(client) ?? 0) + 1;
    if (this.counts.size > 100_000 && !this.counts.has(client)) return false;
    this.counts.set(client, n);
    return n <= this.limit;
  }
}
