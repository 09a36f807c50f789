import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { codes } from "./codes.js";
import { renderErrorsDoc } from "./doc.js";
import { FleetError, toFleetError } from "./fleet-error.js";

describe("error catalog", () => {
  it("docs/errors.md lists exactly the catalog (run `npm run docs:errors` after adding a code)", () => {
    const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
    expect(doc).toBe(renderErrorsDoc());
    for (const code of Object.keys(codes)) expect(doc).toContain(`\`${code}\``);
  });

  it("every code is FR_-prefixed with an HTTP status and a message", () => {
    for (const [code, spec] of Object.entries(codes)) {
      expect(code).toMatch(/^FR_[A-Z0-9_]+$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.message.length).toBeGreaterThan(3);
    }
  });

  it("a FleetError carries code, status and detail; unknown errors become FR_INTERNAL without leaking", () => {
    const e = new FleetError("FR_KEY_PIN", "token fleet-hsm");
    expect(e.status).toBe(403);
    expect(e.message).toBe("the PKCS#11 PIN was rejected: token fleet-hsm");
    const wrapped = toFleetError(new Error("secret internals"));
    expect(wrapped.code).toBe("FR_INTERNAL");
    expect(wrapped.publicMessages.join()).not.toContain("secret internals");
  });
});
