import type { LineReader, RawLine } from "./line-reader.js";
import { parseLine } from "./parse-line.js";
import type { VerifyProblem } from "./types.js";

/** How far verify looks ahead for the missing seq when telling a reorder from a removal. */
const LOOKAHEAD_LINES = 10_000;

export interface Break {
  line: RawLine;
  /** seq and prev found on the line. */
  seq: number;
  prev: string;
  /** seq and prev the line should have had: one more than the line before, and that line's hash. */
  expectedSeq: number;
  expectedPrev: string;
  /** Hash of the line two before (GENESIS_PREV when that is the start of the log); undefined on line 1. */
  prevPrev: string | undefined;
}

/**
 * Names the first tampered line from where the chain first breaks. Each tampering leaves its own mark:
 *   edited line N    → N+1's prev misses, seqs stay contiguous, N+2 still links to N+1;
 *   removed line N   → a seq gap, and the line after the gap links to a hash found nowhere;
 *   reordered lines  → a seq jump whose missing seq shows up a little later, with the link target after it;
 *   inserted line N  → N+1 links straight over N, or N repeats a seq, or the line after links to N-1.
 */
export async function classifyBreak(reader: LineReader, b: Break): Promise<VerifyProblem> {
  const L = b.line.no;
  const before = (n: number) => (n === 0 ? "the start of the log" : `line ${n}`);

  if (b.prev === b.expectedPrev && b.seq !== b.expectedSeq) {
    return {
      line: L,
      seq: b.seq,
      kind: "edited",
      message: `line ${L} has seq ${b.seq} where ${b.expectedSeq} was expected, yet links to ${before(L - 1)}: its seq was changed`,
    };
  }

  if (b.seq > b.expectedSeq) {
    const ahead = await scanAhead(reader, b);
    if (ahead.repeat !== undefined) {
      return {
        line: L,
        seq: b.seq,
        kind: "inserted",
        message: `line ${L} has seq ${b.seq}, which line ${ahead.repeat} has too: line ${L} was inserted`,
      };
    }
    if (ahead.missing !== undefined && ahead.linked) {
      return {
        line: L,
        seq: b.seq,
        kind: "reordered",
        message: `line ${L} (seq ${b.seq}) comes before line ${ahead.missing} (seq ${b.expectedSeq}): lines were reordered`,
      };
    }
  }

  const nextRaw = await reader.peek(0);
  const next = nextRaw ? parseLine(nextRaw.bytes) : undefined;
  const nextPrev = typeof next === "object" ? next.prev : undefined;

  if (nextPrev === b.expectedPrev) {
    return {
      line: L,
      seq: b.seq,
      kind: "inserted",
      message: `line ${L} is not part of the chain: line ${L + 1} links directly to ${before(L - 1)}`,
    };
  }
  if (b.prevPrev !== undefined && b.prev === b.prevPrev) {
    return {
      line: L - 1,
      seq: b.expectedSeq - 1,
      kind: "inserted",
      message: `line ${L - 1} is not part of the chain: line ${L} links directly to ${before(L - 2)}`,
    };
  }
  if (b.seq === b.expectedSeq) {
    // If the next line still links to this one, this line is intact and the one before it changed.
    if (L > 1 && (nextPrev === undefined || nextPrev === reader.hash(b.line))) {
      return {
        line: L - 1,
        seq: b.expectedSeq - 1,
        kind: "edited",
        message: `line ${L - 1} was changed: line ${L} records a different hash for it`,
      };
    }
    return {
      line: L,
      seq: b.seq,
      kind: "edited",
      message: `line ${L} was changed: its prev does not match line ${L - 1}`,
    };
  }
  if (b.seq > b.expectedSeq) {
    const gap =
      b.seq - b.expectedSeq === 1 ? `seq ${b.expectedSeq} is` : `seqs ${b.expectedSeq}-${b.seq - 1} are`;
    return {
      line: L,
      seq: b.expectedSeq,
      kind: "removed",
      message: `${gap} missing: line ${L} has seq ${b.seq} and links to a line that is not in the file`,
    };
  }
  return {
    line: L,
    seq: b.seq,
    kind: "inserted",
    message: `line ${L} repeats seq ${b.seq}, which an earlier line already has: line ${L} was inserted`,
  };
}

/** Looks ahead for the expected seq, for a second line with this line's seq, and for the line this one links to. */
async function scanAhead(
  reader: LineReader,
  b: Break,
): Promise<{ missing: number | undefined; repeat: number | undefined; linked: boolean }> {
  let missing: number | undefined;
  let repeat: number | undefined;
  let linked = false;
  for (let i = 0; i < LOOKAHEAD_LINES; i++) {
    const raw = await reader.peek(i);
    if (!raw) break;
    if (reader.hash(raw) === b.prev) linked = true;
    const p = parseLine(raw.bytes);
    if (typeof p === "string") continue;
    if (p.seq === b.expectedSeq) missing ??= raw.no;
    if (p.seq === b.seq) repeat ??= raw.no;
    // A copy of a later line also has its link target ahead, so only a repeated seq ends the search early.
    if (repeat !== undefined) break;
  }
  return { missing, repeat, linked };
}
