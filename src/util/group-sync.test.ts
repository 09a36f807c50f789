import { describe, expect, it } from "vitest";
import { GroupSync } from "./group-sync.js";

function controlled() {
  const calls: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  const g = new GroupSync(
    () =>
      new Promise<void>((resolve, reject) => {
        calls.push({ resolve, reject });
      }),
  );
  return { g, calls };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("GroupSync", () => {
  it("resolves at once when nothing is unsynced", async () => {
    const { g, calls } = controlled();
    await g.durable();
    expect(calls).toHaveLength(0);
  });

  it("one sync covers every write made before it started; a write during a sync waits for the next", async () => {
    const { g, calls } = controlled();
    const done: string[] = [];
    g.wrote();
    g.wrote();
    void g.durable().then(() => done.push("a"));
    void g.durable().then(() => done.push("b"));
    expect(calls).toHaveLength(1);
    g.wrote(); // after the first sync started
    void g.durable().then(() => done.push("c"));
    calls[0]!.resolve();
    await tick();
    expect(done).toEqual(["a", "b"]);
    expect(calls).toHaveLength(2); // started right away for c
    calls[1]!.resolve();
    await tick();
    expect(done).toEqual(["a", "b", "c"]);
    expect(g.syncs).toBe(2);
  });

  it("a failed sync fails its waiters and every later durable() (fail closed)", async () => {
    const { g, calls } = controlled();
    g.wrote();
    const p = g.durable();
    calls[0]!.reject(new Error("EIO"));
    await expect(p).rejects.toThrow("EIO");
    g.wrote();
    await expect(g.durable()).rejects.toThrow("EIO");
    expect(g.failed).toBeInstanceOf(Error);
  });

  it("kick() syncs in the background without a waiter", async () => {
    const { g, calls } = controlled();
    g.kick();
    expect(calls).toHaveLength(0);
    g.wrote();
    g.kick();
    expect(calls).toHaveLength(1);
    calls[0]!.resolve();
    await g.settle();
    await g.durable();
    expect(calls).toHaveLength(1);
  });
});

describe("GroupSync with lazyMs", () => {
  it("puts a background sync off by lazyMs, but starts at once for a waiter", async () => {
    const calls: Array<() => void> = [];
    const g = new GroupSync(
      () =>
        new Promise<void>((resolve) => {
          calls.push(resolve);
        }),
      30,
    );
    g.wrote();
    g.kick();
    expect(calls).toHaveLength(0); // put off
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(1); // ran after lazyMs
    calls[0]!();
    await tick();
    g.wrote();
    g.kick();
    expect(calls).toHaveLength(1);
    const waited = g.durable(); // a waiter does not wait for the timer
    expect(calls).toHaveLength(2);
    calls[1]!();
    await waited;
    g.wrote();
    g.kick();
    const settled = g.settle(); // settle starts a put-off sync
    expect(calls).toHaveLength(3);
    calls[2]!();
    await settled;
  });
});

describe("GroupSync with gapMs (commit delay)", () => {
  function gapped(gapMs: number, busy?: () => boolean) {
    const calls: Array<() => void> = [];
    const g = new GroupSync(
      () =>
        new Promise<void>((resolve) => {
          calls.push(resolve);
        }),
      0,
      gapMs,
      busy,
    );
    return { g, calls };
  }

  it("applies the gap only while busy() says so", async () => {
    let busy = false;
    const { g, calls } = gapped(10_000, () => busy);
    g.wrote();
    void g.durable();
    calls[0]!();
    await tick();
    g.wrote();
    void g.durable();
    expect(calls).toHaveLength(2); // not busy: the next sync starts at once, within the gap
    calls[1]!();
    await tick();
    busy = true;
    g.wrote();
    const pending = g.durable();
    expect(calls).toHaveLength(2); // busy: put off by the gap
    const settled = g.settle();
    calls[2]!();
    await settled;
    await pending;
  });

  it("starts at once on an idle file, then waits out the gap so later writes share one sync", async () => {
    const { g, calls } = gapped(40);
    const done: string[] = [];
    g.wrote();
    void g.durable().then(() => done.push("a"));
    expect(calls).toHaveLength(1); // idle: no delay
    g.wrote();
    void g.durable().then(() => done.push("b"));
    calls[0]!();
    await tick();
    expect(done).toEqual(["a"]);
    expect(calls).toHaveLength(1); // within the gap: b waits for it to pass
    g.wrote();
    void g.durable().then(() => done.push("c"));
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(2); // one sync for b and c
    calls[1]!();
    await tick();
    expect(done).toEqual(["a", "b", "c"]);
    expect(g.syncs).toBe(2);
  });

  it("settle() starts a sync put off by the gap at once", async () => {
    const { g, calls } = gapped(10_000);
    g.wrote();
    void g.durable();
    calls[0]!();
    await tick();
    g.wrote();
    const pending = g.durable();
    expect(calls).toHaveLength(1);
    const settled = g.settle();
    expect(calls).toHaveLength(2); // started now, not in ten seconds
    calls[1]!();
    await settled;
    await pending;
  });
});
