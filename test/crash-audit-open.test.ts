import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, verifyAuditLog } from "../src/audit/index.js";
import { testSigner } from "../src/audit/test-signer.js";
import { FleetError } from "../src/errors/index.js";
import { ManualClock } from "../src/util/clock.js";

/** Opening an audit log whose only line a crash cut short, versus a file that was never a log. */
describe("audit log open after a crash cut the genesis line short", () => {
  const clock = new ManualClock();
  const signer = testSigner();

  for (const [name, torn] of [
    ["a cut-short genesis line", Buffer.from('{"seq":1,"time":"2026-')],
    ["a few bytes of it", Buffer.from('{"se')],
    ["the zeros a power cut can leave", Buffer.alloc(512)],
  ] as const) {
    it(`starts afresh over ${name}`, async () => {
      const path = join(await mkdtemp(join(tmpdir(), "fr-crash-open-")), "audit.log");
      await writeFile(path, torn);
      const log = await AuditLog.open({ path, signer, clock });
      await log.log({ type: "event", event: { name: "test.event", fields: {} } });
      await log.close();
      expect(await verifyAuditLog(path, { strict: true })).toMatchObject({ ok: true, entries: 1 });
    });
  }

  it("refuses a file without a newline that is not a log, and leaves it as it was", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "fr-crash-open-")), "notes.txt");
    await writeFile(path, "operator notes, no trailing newline");
    const e = await AuditLog.open({ path, signer, clock }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(FleetError);
    expect((e as FleetError).code).toBe("FR_AUDIT_TAMPERED");
    expect(await readFile(path, "utf8")).toBe("operator notes, no trailing newline");
  });
});
