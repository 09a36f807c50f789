import type { FileHandle } from "node:fs/promises";
import { fail } from "../errors/index.js";
import { endOfLastLine, firstLine, linesBackward, readAt } from "./file-lines.js";
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
