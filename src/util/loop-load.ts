import { performance } from "node:perf_hooks";

/** How busy the event loop must have been for `LoopLoad.busy()` to say so (its utilization, 0–1). */
export const BUSY_UTILIZATION = 0.75;
/** How long one measurement of the loop's utilization covers, in milliseconds. */
export const LOAD_WINDOW_MS = 20;

/**
 * Whether this thread's event loop is busy: its utilization (the share of time it spent running callbacks
 * rather than waiting in the poll phase) over the last window of about `windowMs`. Sampled lazily when
 * asked, so an idle process runs no timer; after a long quiet spell the first answer covers that spell
 * and so says "not busy", which is right for the first request of a burst.
 */
export class LoopLoad {
  private mark = performance.eventLoopUtilization();
  private nextCheck = 0;
  private answer = false;

  constructor(
    private readonly threshold = BUSY_UTILIZATION,
    private readonly windowMs = LOAD_WINDOW_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  busy(): boolean {
    const t = this.now();
    if (t >= this.nextCheck) {
      const current = performance.eventLoopUtilization();
      this.answer = performance.eventLoopUtilization(current, this.mark).utilization > this.threshold;
      this.mark = current;
      this.nextCheck = t + this.windowMs;
    }
    return this.answer;
  }
}
