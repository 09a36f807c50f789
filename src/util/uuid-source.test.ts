import { describe, expect, it } from "vitest";
import { UuidSource } from "./uuid-source.js";

describe("UuidSource", () => {
  it("makes version 4 UUIDs in canonical form, unique across several refills", () => {
    const src = new UuidSource();
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) ids.push(src.uuid());
    for (const u of ids) {
      expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(new Set(ids).size).toBe(2000);
    // Every random hex digit takes all 16 values over 2000 ids (the variant digit its 4); the fixed ones do not.
    for (let pos = 0; pos < 36; pos++) {
      const values = new Set(ids.map((u) => u[pos]));
      if ([8, 13, 18, 23].includes(pos)) expect(values).toEqual(new Set(["-"]));
      else if (pos === 14) expect(values).toEqual(new Set(["4"]));
      else if (pos === 19) expect(values.size).toBe(4);
      else expect(values.size).toBe(16);
    }
  });

  it("two sources draw their own random bytes: no id of one appears in the other, across refills", () => {
    const a = new UuidSource();
    const b = new UuidSource();
    const fromA = new Set(Array.from({ length: 600 }, () => a.uuid()));
    const fromB = Array.from({ length: 600 }, () => b.uuid());
    expect(fromA.size).toBe(600);
    expect(fromB.filter((u) => fromA.has(u))).toEqual([]);
  });
});
