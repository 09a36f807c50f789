import {
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { readAuditAnchor, writeAuditAnchor } from "../src/audit/anchor.js";
import { lineHash } from "../src/audit/format.js";
import type { FleetError } from "../src/errors/index.js";
import { createServer, type Server } from "../src/server/main.js";
import { openStore } from "../src/store/index.js";
import { cli } from "./helpers/cli.js";
import { describeEachStore } from "./helpers/stores.js";

/**
 * Lines cut from the end of the audit log, an emptied log or a deleted one leave a file that verifies on
 * its own; the store's record of the last checkpoint shows the loss, at server start and in `audit verify`.
 */
describeEachStore("audit log that lost lines", (ctx) => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function setup(): { dir: string; config: string; auditPath: string } {
    const dir = mkdtempSync(join(tmpdir(), "fr-audit-lost-"));
    dirs.push(dir);
    const config = join(dir, "fleetroot.yaml");
    writeFileSync(
      config,
      `data_dir: ${dir}/data\nstorage: "${ctx.url()}"\nlisten: 127.0.0.1:0\nseal:\n  type: shamir\n`,
    );
    return { dir, config, auditPath: join(dir, "data", "audit.log") };
  }
  const start = (config: string, acceptAuditLoss = false): Promise<Server> =>
    createServer({ configFile: config, env: {}, acceptAuditLoss });
  const refusal = (config: string): Promise<FleetError> =>
    start(config).then(
      async (s) => {
        await s.close();
        throw new Error("expected the server to refuse to start");
      },
      (e: unknown) => e as FleetError,
    );

  async function run(config: string, requests: number): Promise<void> {
    const s = await start(config);
    for (let i = 0; i < requests; i++) {
      const r = await s.app.inject({ method: "GET", url: "/v1/sys/seal-status" });
      expect(r.statusCode).toBe(200);
    }
    await s.close();
  }

  it("a log cut short or deleted stops the start, the CLI names the loss, and --accept-audit-loss records it", async () => {
    await ctx.fresh();
    const { config, auditPath } = setup();
    await run(config, 3);
    await run(config, 2);
    const lines = readFileSync(auditPath, "utf8").trimEnd().split("\n");

    // The intact log: the server starts and the CLI sees the record reached.
    const ok = await cli(["audit", "verify", "--config", config]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`still holds seq ${lines.length}`);

    // The last four lines (the second run's last entries and its close checkpoint) cut off.
    const cut = lines.slice(0, -4).join("\n") + "\n";
    writeFileSync(auditPath, cut);
    expect((await verifyAuditLog(auditPath)).ok).toBe(true);
    const e = await refusal(config);
    expect(e.code).toBe("FR_AUDIT_TAMPERED");
    expect(e.message).toContain(`ends at seq ${lines.length - 4}`);
    expect(e.message).toContain(`at seq ${lines.length}`);
    expect(readFileSync(auditPath, "utf8")).toBe(cut);

    const v = await cli(["audit", "verify", "--config", config]);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain("truncated");
    expect(v.stderr).toContain(`line ${lines.length - 3}`);
    // The file alone (a copy checked elsewhere) cannot show it: that is what the record is for.
    expect((await cli(["audit", "verify", auditPath])).code).toBe(0);
    expect((await cli(["audit", "verify", "--config", config, "--no-store"])).code).toBe(0);

    // Deleted: refused too, and the refused start creates no new log.
    unlinkSync(auditPath);
    expect((await refusal(config)).message).toContain("deleted");
    expect(existsSync(auditPath)).toBe(false);
    const srv = await cli(["server", "--config", config], {}, { timeoutMs: 60_000 });
    expect(srv.code).toBe(1);
    expect(srv.stderr).toContain("--accept-audit-loss");
    expect(srv.stderr).not.toMatch(/\n\s+at /); // no stack trace

    // Accepted: the new log starts with the loss recorded, and the record moves on to it.
    const s = await start(config, true);
    await s.close();
    const events = readFileSync(auditPath, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { event?: { name: string; fields: Record<string, unknown> } });
    const loss = events.find((l) => l.event?.name === "audit.loss_accepted");
    expect(loss?.event?.fields).toMatchObject({ recorded_seq: lines.length, found_seq: 0 });
    const after = await cli(["audit", "verify", "--config", config]);
    expect(after.code).toBe(0);
    await run(config, 1);
  });

  it("a log cut back in both the file and the store is caught by the checkpoint kept outside the server", async () => {
    await ctx.fresh();
    const { config, auditPath } = setup();
    await run(config, 3);
    const early = readFileSync(auditPath, "utf8");
    const store = await openStore(ctx.url(), { migrations: [], migrate: false });
    const earlyAnchor = (await readAuditAnchor(store))!;
    await run(config, 2);

    // A running server exports the last durable checkpoint's seq for monitoring; it never goes down.
    const recorded = (await readAuditAnchor(store))!.seq;
    const s = await start(config);
    const seqOf = async () => {
      const m = await s.app.inject({ method: "GET", url: "/metrics" });
      return Number(/^fleetroot_audit_checkpoint_seq (\d+)$/m.exec(m.body)?.[1]);
    };
    const atStart = await seqOf();
    expect(atStart).toBeGreaterThanOrEqual(recorded);
    await s.close();
    const lines = readFileSync(auditPath, "utf8").trimEnd().split("\n");
    expect(atStart).toBeLessThanOrEqual(lines.length);

    // verify prints the last checkpoint as SEQ:HASH, the hash of that line.
    const ok = await cli(["audit", "verify", "--config", config]);
    expect(ok.code, ok.stderr).toBe(0);
    const mark = /last signed checkpoint: (\d+):([0-9a-f]{64})/.exec(ok.stdout);
    expect(mark?.[1]).toBe(String(lines.length));
    expect(mark?.[2]).toBe(lineHash(Buffer.from(lines.at(-1)!)));
    const kept = `${mark![1]}:${mark![2]}`;
    expect(
      (await cli(["audit", "verify", "--config", config, "--expect-checkpoint", kept])).stdout,
    ).toContain(`still holds the expected checkpoint at seq ${lines.length}`);

    // Someone with access to both cuts the file back to the first run's end and the store's record with it.
    writeFileSync(auditPath, early);
    await writeAuditAnchor(store, earlyAnchor, Date.now());
    await store.close();
    const fooled = await cli(["audit", "verify", "--config", config]);
    expect(fooled.code, fooled.stderr).toBe(0); // the store alone no longer shows it
    const caught = await cli(["audit", "verify", "--config", config, "--expect-checkpoint", kept]);
    expect(caught.code).toBe(1);
    expect(caught.stderr).toContain("truncated");
    expect(caught.stderr).toContain(`a signed checkpoint at seq ${lines.length} was expected`);
    // A file named alone (a copy elsewhere) is checked against it as well.
    expect((await cli(["audit", "verify", auditPath, "--expect-checkpoint", kept])).code).toBe(1);

    // The server starts on the cut-back pair, and what it exports is below what monitoring saw before.
    const cutBack = await start(config);
    const m = await cutBack.app.inject({ method: "GET", url: "/metrics" });
    await cutBack.close();
    const exported = Number(/^fleetroot_audit_checkpoint_seq (\d+)$/m.exec(m.body)?.[1]);
    expect(exported).toBeLessThan(atStart);

    // The same seq holding another line (here the checkpoint re-serialized): "replaced".
    const other = lines.slice(0, -1).join("\n") + "\n" + lines.at(-1)!.replace(/"seq":/, '"seq": ') + "\n";
    writeFileSync(auditPath, other);
    const swapped = await cli(["audit", "verify", auditPath, "--no-store", "--expect-checkpoint", kept]);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toContain("replaced");
    // The file alone verifies: the checkpoint's signed content is unchanged, only its line differs.
    expect((await cli(["audit", "verify", auditPath, "--no-store"])).code).toBe(0);

    // A malformed mark is a usage error.
    for (const bad of ["12", "x:ab", `0:${mark![2]}`, `5:${mark![2]!.slice(1)}`]) {
      const u = await cli(["audit", "verify", auditPath, "--expect-checkpoint", bad]);
      expect(u.code, bad).toBe(2);
      expect(u.stderr).toContain("--expect-checkpoint must be SEQ:HASH");
    }
  });

  it("rotation as docs/audit.md describes it — moved aside while running, or while stopped — starts a linked new log", async () => {
    await ctx.fresh();
    const { config, auditPath } = setup();
    await run(config, 2);

    // While running: the server goes on appending to the moved file and closes it with its checkpoint.
    const s = await start(config);
    renameSync(auditPath, `${auditPath}.1`);
    expect((await s.app.inject({ method: "GET", url: "/v1/sys/seal-status" })).statusCode).toBe(200);
    await s.close();
    const old = readFileSync(`${auditPath}.1`, "utf8").trimEnd().split("\n");
    await run(config, 1);
    const first = readFileSync(auditPath, "utf8").trimEnd().split("\n");
    expect(JSON.parse(first[1]!)).toMatchObject({
      type: "event",
      event: {
        name: "audit.rotated",
        fields: {
          previous_file: `${auditPath}.1`,
          previous_seq: old.length,
          previous_head: lineHash(old.at(-1)!),
        },
      },
    });
    expect((await verifyAuditLog(`${auditPath}.1`, { strict: true })).ok).toBe(true);

    // While stopped.
    renameSync(auditPath, `${auditPath}.2`);
    await run(config, 1);
    expect(readFileSync(auditPath, "utf8")).toContain(`"previous_file":"${auditPath}.2"`);
    expect((await cli(["audit", "verify", "--config", config])).code).toBe(0);
  });
});
