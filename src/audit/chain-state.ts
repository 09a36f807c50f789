import { open, readdir, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fail } from "../errors/index.js";
import { endOfLastLine, firstLine, linesBackward, readAt } from "./file-lines.js";
import type { AuditAnchor } from "./anchor.js";
import { AUDIT_FORMAT, lineHash } from "./format.js";

/** How every genesis line starts (chainLine with seq 1). */
const GENESIS_START = Buffer.from('{"seq":1,"time":"');

/** Where an existing log's chain stands, read from its tail so that opening a large log stays cheap. */
export interface ChainState {
  seq: number;
  head: string;
  /** Lines after the last checkpoint (genesis included when there is no checkpoint yet). */
  sinceCheckpoint: number;
}

/**
 * Reads the chain state of a non-empty log. A last line without its "\n" is a write that was cut short (crash,
 * full disk): its log() call was rejected, so it is not an entry, and it is cut off here before appending.
 * Returns undefined when nothing complete is left (the log starts afresh).
 */
export async function readChainState(
  fh: FileHandle,
  size: number,
  keyId: string,
  path: string,
): Promise<ChainState | undefined> {
  const end = await endOfLastLine(fh, size);
  if (end === 0) {
    // Only a cut-short genesis line (or the zeros a crash can leave) is cut off to start afresh; any other
    // file without a "\n" is not a log of ours and is left as it is.
    const head = await readAt(fh, 0, Math.min(size, GENESIS_START.length));
    const torn = head.every((b) => b === 0) || GENESIS_START.subarray(0, head.length).equals(head);
    if (!torn) {
      fail(
        "FR_AUDIT_TAMPERED",
        `${path} does not start with a ${AUDIT_FORMAT} genesis line; run \`fleetroot audit verify ${path}\``,
      );
    }
    await fh.truncate(0);
    return undefined;
  }

  const first = await firstLine(fh, end);
  const genesis = first ? parseObject(first) : undefined;
  if (genesis?.type !== "genesis" || genesis.format !== AUDIT_FORMAT) {
    fail(
      "FR_AUDIT_TAMPERED",
      `${path} does not start with a ${AUDIT_FORMAT} genesis line; run \`fleetroot audit verify ${path}\``,
    );
  }
  if (genesis.key_id !== keyId) {
    fail(
      "FR_AUDIT_FILE",
      `${path} was started with audit key ${String(genesis.key_id)} but the configured key is ${keyId}; ` +
        "configure the original audit key, or move the file aside to start a new log",
    );
  }

  let last: { seq: number; head: string } | undefined;
  let lastCheckpointSeq = 0;
  for await (const bytes of linesBackward(fh, end)) {
    const line = parseObject(bytes);
    if (!line || !Number.isSafeInteger(line.seq)) {
      fail(
        "FR_AUDIT_TAMPERED",
        `${path} has a malformed line near its end; run \`fleetroot audit verify ${path}\``,
      );
    }
    last ??= { seq: line.seq as number, head: lineHash(bytes) };
    if (line.type === "checkpoint") {
      lastCheckpointSeq = line.seq as number;
      break;
    }
  }
  if (!last) return undefined;
  // Cut the torn bytes only once the file is known to be ours, so a refused open changes nothing.
  if (end < size) await fh.truncate(end);
  return { seq: last.seq, head: last.head, sinceCheckpoint: last.seq - lastCheckpointSeq };
}

function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(bytes.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the log at `path` does not reach the store's anchor (see AuditAnchor), or undefined when it holds the
 * anchored line with the anchored hash. `state` is what readChainState found (undefined: no lines); `end`
 * the offset just past the file's last complete line.
 */
export async function anchorProblem(
  fh: FileHandle,
  end: number,
  state: ChainState | undefined,
  anchor: AuditAnchor,
  keyId: string,
): Promise<string | undefined> {
  const recorded = `the store recorded a signed checkpoint of it at seq ${anchor.seq} (line hash ${anchor.head.slice(0, 16)}…)`;
  if (anchor.keyId !== keyId) {
    return `the store recorded this install's log under audit key ${anchor.keyId}, but the configured audit key is ${keyId}: the log and its key were replaced`;
  }
  if (!state) return `it holds no entries, but ${recorded}: the log was deleted or emptied`;
  if (state.seq < anchor.seq) {
    return `it ends at seq ${state.seq}, but ${recorded}: at least ${anchor.seq - state.seq} line(s) were removed from its end, or it was replaced by a shorter log`;
  }
  for await (const bytes of linesBackward(fh, end)) {
    const line = parseObject(bytes);
    const seq = line?.seq;
    if (typeof seq !== "number" || seq > anchor.seq) continue;
    if (seq === anchor.seq && lineHash(bytes) === anchor.head) return undefined;
    return seq === anchor.seq
      ? `its line with seq ${seq} is not the signed checkpoint the store recorded at that seq (line hash ${anchor.head.slice(0, 16)}…): the log was replaced or rewritten`
      : `it has no line with seq ${anchor.seq}, but ${recorded}: the log was rewritten`;
  }
  return `it has no line with seq ${anchor.seq}, but ${recorded}: the log was rewritten`;
}

/**
 * A log that was rotated (moved aside in its directory, see docs/audit.md) and holds the anchored line: the
 * first file named `<name>.<suffix>` next to `path` whose lines reach the anchor with its hash. Read only.
 */
export async function findRotatedLog(path: string, anchor: AuditAnchor): Promise<string | undefined> {
  const dir = dirname(path);
  const prefix = basename(path) + ".";
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names.filter((n) => n.startsWith(prefix) && !n.endsWith(".lock")).sort()) {
    const candidate = join(dir, name);
    let fh: FileHandle | undefined;
    try {
      fh = await open(candidate, "r");
      const st = await fh.stat();
      if (!st.isFile() || st.size === 0) continue;
      if (await holdsAnchor(fh, await endOfLastLine(fh, st.size), anchor)) return candidate;
    } catch {
      // unreadable: not the one
    } finally {
      await fh?.close();
    }
  }
  return undefined;
}

/** Whether the lines of [0, end) include the anchored seq with the anchored hash. */
async function holdsAnchor(fh: FileHandle, end: number, anchor: AuditAnchor): Promise<boolean> {
  for await (const bytes of linesBackward(fh, end)) {
    const seq = parseObject(bytes)?.seq;
    if (typeof seq !== "number") return false;
    if (seq < anchor.seq) return false;
    if (seq === anchor.seq) return lineHash(bytes) === anchor.head;
  }
  return false;
}
