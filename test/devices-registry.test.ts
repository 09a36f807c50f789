import { expect, it } from "vitest";
import { DeviceRegistry, deviceMigrations } from "../src/devices/index.js";
import { enrollMigrations } from "../src/enroll/index.js";
import { FleetError } from "../src/errors/index.js";
import { ManualClock } from "../src/util/clock.js";
import { describeEachStore } from "./helpers/stores.js";

describeEachStore("device registry", (ctx) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const open = async () => new DeviceRegistry(await ctx.open([deviceMigrations, enrollMigrations]), clock);

  it("creates devices, filters by status, provisioner, labels and name prefix, and pages by id", async () => {
    const reg = await open();
    for (let i = 0; i < 25; i++) {
      await reg.create({
        id: `dev-${String(i).padStart(3, "0")}`,
        name: i % 2 ? `drone-${i}` : `arm-${i}`,
        labels: { site: i < 10 ? "north" : "south", tier: i % 3 === 0 ? "gold" : "std" },
        status: i % 5 === 0 ? "pending" : "active",
        provisioner: i % 4 === 0 ? "factory" : "field",
      });
    }
    await expect(reg.create({ id: "dev-000", status: "pending" })).rejects.toMatchObject({
      code: "FR_CONFLICT",
    });

    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await reg.list({ limit: 10, after });
      seen.push(...page.devices.map((d) => d.id));
      after = page.next;
    } while (after);
    expect(seen.length).toBe(25);
    expect([...seen].sort()).toEqual(seen);

    const north = await reg.list({ limit: 100, labels: { site: "north" } });
    expect(north.devices.length).toBe(10);
    const northGold = await reg.list({ limit: 100, labels: { site: "north", tier: "gold" } });
    expect(northGold.devices.map((d) => d.id)).toEqual(["dev-000", "dev-003", "dev-006", "dev-009"]);
    const pendingFactory = await reg.list({ limit: 100, status: "pending", provisioner: "factory" });
    expect(pendingFactory.devices.map((d) => d.id)).toEqual(["dev-000", "dev-020"]);
    const drones = await reg.list({ limit: 100, namePrefix: "drone-" });
    expect(drones.devices.every((d) => d.name.startsWith("drone-"))).toBe(true);
    expect(drones.devices.length).toBe(12);
    const labelPaged = await reg.list({ limit: 3, labels: { site: "south" }, after: "dev-012" });
    expect(labelPaged.devices.map((d) => d.id)).toEqual(["dev-013", "dev-014", "dev-015"]);
    expect(labelPaged.next).toBe("dev-015");
  });

  it("updates labels (replacing the index rows) and enforces lifecycle transitions", async () => {
    const reg = await open();
    await reg.create({ id: "lc-1", labels: { a: "1" }, status: "pending" });
    await reg.setLabels("lc-1", { b: "2" });
    expect((await reg.get("lc-1")).labels).toEqual({ b: "2" });
    expect((await reg.list({ limit: 10, labels: { a: "1" } })).devices.some((d) => d.id === "lc-1")).toBe(
      false,
    );
    expect((await reg.list({ limit: 10, labels: { b: "2" } })).devices.map((d) => d.id)).toContain("lc-1");
    await expect(reg.setLabels("lc-1", { "bad key!": "x" })).rejects.toMatchObject({ code: "FR_VALIDATION" });

    await reg.transition("lc-1", ["pending", "active"], "suspended");
    await expect(reg.transition("lc-1", ["suspended"], "active")).resolves.toMatchObject({
      status: "active",
    });
    await reg.transition("lc-1", ["pending", "active", "suspended"], "decommissioned");
    const err = await reg.transition("lc-1", ["suspended"], "active").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).code).toBe("FR_DEVICE_STATE");
    await expect(reg.get("nope")).rejects.toMatchObject({ code: "FR_DEVICE_NOT_FOUND" });
  });

  it("records certificates: one current, newest first, found by fingerprint, revocation marked", async () => {
    const reg = await open();
    await reg.create({ id: "c-1", status: "pending" });
    const der = (n: number) => Buffer.from(`cert-${n}`);
    for (let n = 1; n <= 3; n++) {
      await reg.addCertificate("c-1", {
        issuerId: "iss",
        serial: `0${n}`,
        der: der(n),
        notBefore: 0,
        notAfter: 1000,
      });
    }
    expect((await reg.get("c-1")).status).toBe("active");
    const certs = await reg.certificates("c-1");
    expect(certs.map((c) => c.serial)).toEqual(["03", "02", "01"]);
    expect(certs.map((c) => c.current)).toEqual([true, false, false]);
    const { certFingerprint } = await import("../src/devices/index.js");
    expect((await reg.certificateByFingerprint(certFingerprint(der(2))))?.serial).toBe("02");
    await reg.markRevoked("iss", "03", 5);
    expect((await reg.certificates("c-1"))[0]?.revokedAt).toBe(5);
  });
});
