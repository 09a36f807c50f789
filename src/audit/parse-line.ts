import type { SignatureScheme } from "../keys/types.js";
import { isSignatureScheme } from "./format.js";
import type { CheckpointReason } from "./types.js";

/** The chain fields every line has; `obj` is the whole parsed line. */
export interface ParsedLine {
  seq: number;
  prev: string;
  time: string;
  type: string;
  obj: Record<string, unknown>;
}

export interface ParsedCheckpoint {
  count: number;
  reason: CheckpointReason;
  key_id: string;
  algorithm: SignatureScheme;
  signature: Buffer;
}

const HEX64 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const reasons: ReadonlySet<string> = new Set(["interval", "request", "open", "close"]);

/** Parses one line's chain fields; a string says what is wrong. */
export function parseLine(bytes: Buffer): ParsedLine | string {
  const framing = framingProblem(bytes);
  if (framing) return framing;
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch {
    return "not valid JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
  const obj = v as Record<string, unknown>;
  const { seq, prev, time, type } = obj;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1)
    return "seq is missing or not a positive integer";
  if (typeof prev !== "string" || !HEX64.test(prev)) return "prev is missing or not 64 hex digits";
  if (typeof time !== "string" || time.includes("\n")) return "time is missing or invalid";
  if (typeof type !== "string") return "type is missing";
  return { seq, prev, time, type, obj };
}

/**
 * The server writes compact JSON, so a line starts with "{" and ends with "}". Anything else around it (a "\r"
 * from a CRLF conversion, a BOM, padding, the NUL bytes a crash can leave) is named here: JSON.parse would
 * accept whitespace, and on the last line no later hash would catch it.
 */
function framingProblem(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return "the line is empty";
  if (bytes.every((b) => b === 0)) return "the line is all NUL bytes (a crash can leave a zero-filled tail)";
  if (bytes.at(-1) === 0x0d) return 'the line ends with "\\r": the file has CRLF line endings';
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    return "the line starts with a byte-order mark";
  if (bytes[0] !== 0x7b || bytes.at(-1) !== 0x7d)
    return 'the line does not start with "{" and end with "}" (extra bytes around the JSON)';
  return undefined;
}

/** What a checkpoint line holds, and nothing else: the signature covers these, not the line's bytes. */
const CHECKPOINT_FIELDS: ReadonlySet<string> = new Set([
  "seq",
  "time",
  "prev",
  "type",
  "count",
  "reason",
  "key_id",
  "algorithm",
  "signature",
]);

/** The checkpoint fields of a line whose type is "checkpoint"; a string says what is wrong. */
export function parseCheckpoint(obj: Record<string, unknown>): ParsedCheckpoint | string {
  // No later line's hash covers the last checkpoint: a field added to it is caught only here.
  const extra = Object.keys(obj).filter((k) => !CHECKPOINT_FIELDS.has(k));
  if (extra.length) return `a checkpoint has no field ${extra.map((k) => JSON.stringify(k)).join(", ")}`;
  const { count, reason, key_id, algorithm, signature } = obj;
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0)
    return "checkpoint count is invalid";
  if (typeof reason !== "string" || !reasons.has(reason)) return "checkpoint reason is invalid";
  if (typeof key_id !== "string" || !HEX64.test(key_id)) return "checkpoint key_id is invalid";
  if (!isSignatureScheme(algorithm))
    return `checkpoint algorithm ${JSON.stringify(algorithm)} is not supported`;
  if (typeof signature !== "string" || signature.length === 0 || !BASE64.test(signature)) {
    return "checkpoint signature is missing or not base64";
  }
  return {
    count,
    reason: reason as CheckpointReason,
    key_id,
    algorithm,
    signature: Buffer.from(signature, "base64"),
  };
}
