import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KeyManager } from "../../keys/index.js";
import type { PkiServices } from "../../pki/index.js";
import { ManualClock } from "../../util/clock.js";
import { type CaDeps, createCas } from "./cas.js";

describe("createCas with ca_source pki", () => {
  it("refuses an issuer that may not sign CA certificates before making any key", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "fr-ros2-cas-"));
    const generated: string[] = [];
    const issuer = { id: "iss-1", name: "issuing", parts: { pathLen: 0 } };
    const deps: CaDeps = {
      keys: {
        generate: (uri: string) => {
          generated.push(uri);
          return Promise.reject(new Error("no key should be made"));
        },
      } as unknown as KeyManager,
      clock: new ManualClock(),
      dataDir,
      pki: () => ({ issuers: { resolve: () => issuer } }) as unknown as PkiServices,
      audit: () => Promise.resolve(),
    };
    await expect(
      createCas(deps, {
        source: "pki",
        issuerRef: "issuing",
        identityKey: undefined,
        permissionsKey: undefined,
        identityName: "Identity CA",
        permissionsName: "Permissions CA",
        algorithm: "ecdsa-p256",
        ttlSeconds: 3600,
      }),
    ).rejects.toMatchObject({ code: "FR_PKI_ISSUER_INVALID" });
    expect(generated).toEqual([]);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
