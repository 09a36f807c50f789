import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { readAuditAnchor, tailAuditLog, verifyAuditLog, type AuditAnchor } from "../../audit/index.js";
import { loadConfig, resolvePaths } from "../../config/index.js";
import { openStore, parseStoreUrl, type Store } from "../../store/index.js";
import { globals } from "../context.js";
import { CliError, print, terminalSafe } from "../output.js";

/**
 * The store's record of how far the log reached (see AuditAnchor), from the store the configuration names;
 * undefined when that store does not exist yet or holds no record. Never creates or migrates anything.
 */
async function storeAnchor(config: string | undefined): Promise<AuditAnchor | undefined> {
  const storage = resolvePaths(loadConfig({ file: config })).storage;
  let store: Store | undefined;
  try {
    const loc = parseStoreUrl(storage);
    if (loc.dialect === "sqlite" && (loc.file === ":memory:" || !existsSync(loc.file))) return undefined;
    store = await openStore(storage, { migrations: [], migrate: false });
    return await readAuditAnchor(store);
  } catch (e) {
    // A store of a version from before the record (no such table) has nothing to compare with.
    if (/audit_anchor/.test((e as Error)?.message ?? "")) return undefined;
    throw new CliError(
      `cannot read the server's store to check how far the audit log reached (${(e as Error).message}); ` +
        "run with --no-store to check the file alone",
    );
  } finally {
    await store?.close();
  }
}

/** The audit log path: the argument, else the one the server's configuration names. */
function auditPath(file: string | undefined, config: string | undefined): string {
  if (file) return file;
  return resolvePaths(loadConfig({ file: config ?? process.env.FLEETROOT_CONFIG })).auditPath;
}

/** `SEQ:HASH` as `audit verify` prints it for the last checkpoint; a usage error (exit 2) otherwise. */
function parseCheckpointMark(text: string): { seq: number; head: string } {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1)
    throw new CliError(
      `--expect-checkpoint must be SEQ:HASH as "audit verify" prints it after "last signed checkpoint:" ` +
        `(a seq of 1 or more, a colon, 64 hex digits), not "${text}"`,
      2,
    );
  return { seq: Number(m[1]), head: m[2]!.toLowerCase() };
}

export function auditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .description("verify and follow the tamper-evident audit log (works on the file, offline)");

  audit
    .command("verify")
    .description(
      "check the hash chain and signed checkpoints; names the first entry edited, removed, reordered or inserted",
    )
    .argument("[file]", "audit log file (default: from --config / FLEETROOT_CONFIG, else ./data/audit.log)")
    .option("-c, --config <file>", "server configuration that names the audit log")
    .option(
      "--strict",
      "also fail when entries follow the last signed checkpoint (use on logs of stopped servers)",
    )
    .option(
      "-k, --public-key <pem>",
      "public key the checkpoints must verify under (default: the key in the log's genesis entry)",
    )
    .option(
      "--expect-checkpoint <seq:hash>",
      "a checkpoint kept outside the server from an earlier run (the seq:hash it printed): the log must " +
        "still hold it, even if both the file and the server's store were cut back",
    )
    .option(
      "--no-store",
      "do not compare with the server store's record of the log's last checkpoint (read when the log is " +
        "found through the configuration, or --config is given), which shows lines cut from the end",
    )
    .action(
      async (
        file: string | undefined,
        o: {
          config?: string;
          publicKey?: string;
          strict?: boolean;
          store: boolean;
          expectCheckpoint?: string;
        },
        cmd: Command,
      ) => {
        const expect = o.expectCheckpoint === undefined ? undefined : parseCheckpointMark(o.expectCheckpoint);
        const path = auditPath(file, o.config);
        const config = o.config ?? process.env.FLEETROOT_CONFIG;
        // A file named alone may be a copy taken elsewhere: only a configuration ties it to a store.
        const anchor = o.store && (config || !file) ? await storeAnchor(config) : undefined;
        let publicKey: Uint8Array | undefined;
        if (o.publicKey) {
          try {
            publicKey = createPublicKey(readFileSync(o.publicKey)).export({ type: "spki", format: "der" });
          } catch (e) {
            throw new CliError(`cannot read public key ${o.publicKey}: ${(e as Error).message}`);
          }
        }
        const result = await verifyAuditLog(path, {
          ...(publicKey ? { publicKey } : {}),
          ...(o.strict ? { strict: true } : {}),
          ...(anchor ? { anchor } : {}),
          ...(expect ? { expect } : {}),
        });
        const g = globals(cmd);
        if (g.format === "json") print(result, "json");
        else if (result.ok) {
          process.stdout.write(
            `OK: ${plural(result.entries, "entry", "entries")}, ${plural(result.checkpoints, "signed checkpoint", "signed checkpoints")} verified in ${path}\n`,
          );
          if (result.anchorSeq !== undefined)
            process.stdout.write(
              `the log still holds seq ${result.anchorSeq}, the last checkpoint the server's store recorded\n`,
            );
          if (result.expectedSeq !== undefined)
            process.stdout.write(
              `the log still holds the expected checkpoint at seq ${result.expectedSeq}\n`,
            );
          if (result.lastCheckpointHead !== undefined)
            process.stdout.write(
              `last signed checkpoint: ${result.lastCheckpointSeq}:${result.lastCheckpointHead} ` +
                "(keep it outside the server; --expect-checkpoint checks a later run still holds it)\n",
            );
          // Chained but not yet signed: a running server's latest lines, or what a crash left (--strict fails).
          const tail = result.unsignedTail;
          if (tail)
            process.stdout.write(
              `note: the last ${plural(tail.count, "line", "lines")} (from line ${tail.line}, seq ${tail.seq}) ` +
                "are chained but not yet covered by a signed checkpoint; the server signs them at its next " +
                "checkpoint or restart (--strict fails on them)\n",
            );
        }
        if (!result.ok) {
          const p = result.problem;
          throw new CliError(
            p
              ? `audit log ${path} fails verification at line ${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ""}: ${p.kind}: ${p.message}`
              : `audit log ${path} fails verification`,
          );
        }
      },
    );

  audit
    .command("tail")
    .description(
      "print the last entries of the audit log and follow new ones (across rotation and truncation, as tail -F)",
    )
    .argument("[file]", "audit log file")
    .option("-c, --config <file>", "server configuration that names the audit log")
    .option("-n, --lines <n>", "number of lines to show first", "10")
    .option("--no-follow", "print and exit instead of following")
    .action(async (file: string | undefined, o: { config?: string; lines: string; follow: boolean }) => {
      if (!/^\d+$/.test(o.lines))
        throw new CliError(`--lines must be a whole number (0 prints only new entries), not "${o.lines}"`, 2);
      const path = auditPath(file, o.config);
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await tailAuditLog(path, {
        lines: Number(o.lines),
        follow: o.follow,
        signal: ac.signal,
        // Printed as read, but a tampered line with raw control characters cannot drive the terminal.
        onLine: (line) => process.stdout.write(terminalSafe(line) + "\n"),
        // As tail -F: rotation, truncation and a missing file are reported on stderr, and following goes on.
        onNotice: (message) => process.stderr.write(`fleetroot audit tail: ${message}\n`),
      });
    });
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
