/** Time source injected wherever time matters, so tests can move it. */
export interface Clock {
  now(): Date;
  /** now().getTime(), without making a Date: for checks made on every request. */
  nowMs(): number;
}

export const systemClock: Clock = { now: () => new Date(), nowMs: () => Date.now() };

/** A clock tests can set and advance. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.t = typeof start === "number" ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  nowMs(): number {
    return this.t;
  }
  set(t: Date | number): void {
    this.t = typeof t === "number" ? t : t.getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
