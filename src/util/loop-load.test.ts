import { expect, it } from "vitest";
import { LoopLoad } from "./loop-load.js";

const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy on purpose: the event loop cannot wait while this runs
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("says busy after a window the loop spent running code, not after one it spent waiting, and measures once per window", async () => {
  let t = 0;
  const load = new LoopLoad(0.5, 10, () => t);
  spin(30);
  expect(load.busy()).toBe(true);
  await sleep(40);
  t = 5;
  expect(load.busy()).toBe(true); // within the window: the last answer stands
  t = 10;
  expect(load.busy()).toBe(false); // the loop waited through the sleep
  spin(30);
  t = 15;
  expect(load.busy()).toBe(false);
  t = 20;
  expect(load.busy()).toBe(true);
});
