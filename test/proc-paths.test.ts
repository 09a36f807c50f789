import { describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

// Node 20's recursive mkdir spins forever on paths under /proc; Fleetroot creates its directories without it.
describe("directories under /proc", () => {
  it("a server whose data_dir is under /proc exits quickly with a configuration error naming it", async () => {
    const started = Date.now();
    const r = await cli(
      ["server", "--dev"],
      { FLEETROOT_DATA_DIR: "/proc/self/nope/data", FLEETROOT_LISTEN: "127.0.0.1:0" },
      { timeoutMs: 20_000 },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("FR_CONFIG_INVALID");
    expect(r.stderr).toContain("/proc/self/nope/data");
    expect(r.stderr).toContain("ENOENT");
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);
});
