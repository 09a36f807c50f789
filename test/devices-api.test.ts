import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { describeEachStore } from "./helpers/stores.js";

describeEachStore("/v1/fleet/devices and enrollment on each store", (ctx) => {
  let f: Fleet | undefined;
  afterAll(async () => f?.close());

  it("enrolls, lists with filters and paging, updates labels, suspends, resumes, decommissions", async () => {
    f = await startFleet({ storage: await ctx.fresh() });
    const fleet = f;
    expect(
      (await fleet.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" })).status,
    ).toBe(200);
    for (let i = 0; i < 7; i++) {
      const tk = await fleet.api("POST", "fleet/provisioners/factory/tokens", {
        device_id: `d-${i}`,
        labels: { ring: i < 4 ? "canary" : "stable" },
      });
      await enrollDevice({
        server: fleet.url,
        provisioner: "factory",
        out: mkdtempSync(join(tmpdir(), "fr-agent-")),
        proof: { type: "token", token: (tk.data as { token: string }).token },
      });
    }
    const page1 = (await fleet.api("GET", "fleet/devices?limit=3&label=ring%3Dcanary")).data as {
      keys: string[];
      next: string;
    };
    expect(page1.keys).toEqual(["d-0", "d-1", "d-2"]);
    const page2 = (await fleet.api("GET", `fleet/devices?limit=3&label=ring%3Dcanary&after=${page1.next}`))
      .data as { keys: string[]; next: string | null };
    expect(page2).toMatchObject({ keys: ["d-3"], next: null });
    const listed = await fleet.t.call("GET", "fleet/devices?list=true", undefined, fleet.root);
    expect(listed.json().data.keys).toHaveLength(7);

    expect((await fleet.api("POST", "fleet/devices/d-5/labels", { labels: { ring: "canary" } })).status).toBe(
      200,
    );
    expect(
      ((await fleet.api("GET", "fleet/devices?label=ring%3Dcanary")).data as { keys: string[] }).keys,
    ).toContain("d-5");
    expect((await fleet.api("POST", "fleet/devices/d-5/suspend")).status).toBe(200);
    expect(
      ((await fleet.api("GET", "fleet/devices?status=suspended")).data as { keys: string[] }).keys,
    ).toEqual(["d-5"]);
    const bad = await fleet.api("POST", "fleet/devices/d-4/resume");
    expect(bad).toMatchObject({ status: 400, code: "FR_DEVICE_STATE" });
    expect((await fleet.api("POST", "fleet/devices/d-5/resume")).status).toBe(200);
    const dec = await fleet.api("POST", "fleet/devices/d-6/decommission");
    expect((dec.data as { revoked_serials: string[] }).revoked_serials).toHaveLength(1);
    const d6 = (await fleet.api("GET", "fleet/devices/d-6")).data as {
      status: string;
      certificates: { revoked_at: string | null }[];
    };
    expect(d6.status).toBe("decommissioned");
    expect(d6.certificates[0]?.revoked_at).not.toBeNull();
    expect(await fleet.api("GET", "fleet/devices?status=bogus")).toMatchObject({
      status: 400,
      code: "FR_VALIDATION",
    });
    expect(await fleet.api("GET", "fleet/devices/nope")).toMatchObject({
      status: 404,
      code: "FR_DEVICE_NOT_FOUND",
    });
    // Without a token the registry is closed.
    expect((await fleet.t.call("GET", "fleet/devices")).statusCode).toBe(403);
  });

  it("resumes a device suspended before its first certificate to pending (was: active without one)", async () => {
    const g = await startFleet({ storage: await ctx.fresh() });
    try {
      await g.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
      await g.api("POST", "fleet/provisioners/factory/tokens", { device_id: "p-1", labels: { a: "1" } });
      expect(await g.api("POST", "fleet/devices/p-1/suspend")).toMatchObject({ status: 200 });
      expect(await g.api("POST", "fleet/devices/p-1/resume")).toMatchObject({
        status: 200,
        data: { status: "pending" },
      });
    } finally {
      await g.close();
    }
  });

  it("refuses a labels request without `labels` instead of clearing every label", async () => {
    const g = await startFleet({ storage: await ctx.fresh() });
    try {
      await g.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" });
      await g.api("POST", "fleet/provisioners/factory/tokens", { device_id: "l-1", labels: { a: "1" } });
      expect(await g.api("POST", "fleet/devices/l-1/labels", { label: { b: "2" } })).toMatchObject({
        status: 400,
        code: "FR_VALIDATION",
      });
      expect((await g.api("GET", "fleet/devices/l-1")).data).toMatchObject({ labels: { a: "1" } });
      expect(await g.api("POST", "fleet/devices/l-1/labels", { labels: {} })).toMatchObject({
        status: 200,
        data: { labels: {} },
      });
    } finally {
      await g.close();
    }
  });
});
