import { randomUUID } from "node:crypto";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import { Lease } from "./lease.js";
import type { PublishResult, UpdatesRepository } from "./repository.js";

export interface RefreshOptions {
  store: Store;
  clock: Clock;
  repos: UpdatesRepository;
  /** How often the job runs (ms). */
  intervalMs: number;
  /** This node's name in the lease row. */
  holder?: string;
  onError?: (repo: string, e: unknown) => void;
}

/**
 * The scheduled job that keeps timestamp and snapshot fresh. Every node runs the timer; only the node
 * holding the lease signs, so several nodes on one database never race to publish versions.
 */
export class OnlineRefresher {
  readonly lease: Lease;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly opts: RefreshOptions) {
    this.lease = new Lease(opts, "updates-refresh", opts.holder ?? randomUUID());
  }

  /** One pass: returns what each repository published, or undefined when another node holds the lease. */
  async runOnce(): Promise<Record<string, PublishResult> | undefined> {
    if (!(await this.lease.acquire(this.opts.intervalMs * 3))) return undefined;
    const out: Record<string, PublishResult> = {};
    for (const repo of await this.opts.repos.list()) {
      try {
        out[repo] = await this.opts.repos.refreshOnline(repo);
      } catch (e) {
        this.opts.onError?.(repo, e);
      }
    }
    return out;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((e: unknown) => this.opts.onError?.("*", e))
        .finally(() => (this.running = undefined));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
