import type * as nodeFs from "node:fs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { FleetError } from "../errors/index.js";
import { loadConfig } from "./load.js";

// The tests may run as root, whom chmod 000 does not stop: a file named "locked.yaml" fails as unreadable.
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof nodeFs>();
  return {
    ...fs,
    readFileSync: (...args: Parameters<typeof fs.readFileSync>) => {
      if (String(args[0]).endsWith("locked.yaml")) {
        throw Object.assign(new Error(`EACCES: permission denied, open '${String(args[0])}'`), {
          code: "EACCES",
        });
      }
      return fs.readFileSync(...args);
    },
  };
});

describe("an unreadable configuration file", () => {
  it("says permission denied, for which user, and what to do", () => {
    const p = join(mkdtempSync(join(tmpdir(), "fr-config-")), "locked.yaml");
    writeFileSync(p, "listen: 127.0.0.1:8200\n");
    let err: unknown;
    try {
      loadConfig({ file: p, env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetError);
    const e = err as FleetError;
    expect(e.code).toBe("FR_CONFIG_UNREADABLE");
    expect(e.message).toMatch(
      new RegExp(
        `${p}: permission denied \\(EACCES\\) for user .*\\(uid \\d+\\); make the file readable by the user the server runs as$`,
      ),
    );
  });
});
