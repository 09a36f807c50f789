import type { Signer } from "../keys/types.js";
import type { Clock } from "../util/clock.js";
import type { AuditAnchor } from "./anchor.js";

/** One audit record as the server builds it; src/audit HMACs the sensitive parts before writing. */
export interface AuditEntry {
  type: "request" | "response" | "event";
  request?: {
    id: string;
    operation: string;
    path: string;
    remote_address?: string;
    client_token?: string;
    client_token_accessor?: string;
    policy_path?: string;
    data?: Record<string, unknown>;
  };
  auth?: { accessor?: string; policies?: string[]; display_name?: string; client_token?: string };
  response?: { status: number; data?: unknown; auth?: { client_token?: string; accessor?: string } };
  error?: string;
  event?: {
    name: string;
    fields?: Record<string, string | number | boolean>;
    data?: Record<string, unknown>;
  };
}

export interface AuditOptions {
  /** JSON Lines file; created if missing, continued (chain and all) if present. */
  path: string;
  /** Signs the checkpoints; its public key goes into the genesis line. */
  signer: Signer;
  /** Entries between two interval checkpoints; default 1000. */
  checkpointEvery?: number;
  clock: Clock;
  /**
   * The store's record of the log's latest durable checkpoint (readAuditAnchor): opening fails with
   * FR_AUDIT_TAMPERED when the file no longer holds that line, unless `acceptLoss`.
   */
  anchor?: AuditAnchor;
  /** Open a log that does not reach `anchor` anyway; AuditLog.lossAccepted then says what was lost. */
  acceptLoss?: boolean;
  /**
   * Called with each genesis or checkpoint line once it is durable, in seq order, to be recorded as the new
   * anchor (writeAuditAnchor). close() waits for the calls; their failures are the callee's to report.
   */
  onAnchor?: (anchor: AuditAnchor) => Promise<void>;
}

/** Why a checkpoint was written; signed, so a clean close cannot be faked away. */
export type CheckpointReason = "interval" | "request" | "open" | "close";

export type ProblemKind =
  | "edited"
  | "removed"
  | "reordered"
  | "inserted"
  | "bad-signature"
  | "malformed"
  | "unsigned-tail"
  /** Lines the store's anchor says the log had are gone from its end (or the whole file was emptied). */
  | "truncated"
  /** The line at the anchor's seq is not the anchored one: the log was replaced by another chain. */
  | "replaced";

export interface VerifyProblem {
  /** 1-based line number in the file. */
  line: number;
  seq?: number;
  kind: ProblemKind;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Lines read and verified before the first problem (genesis, entries and checkpoints). */
  lines: number;
  /** Audit entries (request, response, event) verified. */
  entries: number;
  checkpoints: number;
  /** seq of the last checkpoint whose signature verified; 0 when none. */
  lastCheckpointSeq: number;
  /** seq of the last line verified; 0 when none. */
  lastSeq: number;
  /** Which public key the checkpoints were checked with: the caller's, or the one in the genesis line. */
  keySource: "option" | "genesis" | "none";
  /** hex SHA-256 of the SPKI the checkpoints were checked with. */
  keyId?: string;
  /** Lines after the last checkpoint: chained but not yet signed (server running, or it crashed). */
  unsignedTail?: { line: number; seq: number; count: number };
  /** With VerifyOptions.anchor: the anchored seq, found in the log with the anchored hash (else a problem). */
  anchorSeq?: number;
  /** With VerifyOptions.expect: its seq, found in the log with its hash (else a problem). */
  expectedSeq?: number;
  /**
   * hex SHA-256 of the last verified checkpoint's line (the `prev` of the line after it): with
   * lastCheckpointSeq, what to keep outside the server and give back as VerifyOptions.expect.
   */
  lastCheckpointHead?: string;
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** SPKI DER the checkpoints must verify under; default the key in the genesis line. */
  publicKey?: Uint8Array;
  /** Fail (kind "unsigned-tail") on any line after the last checkpoint, e.g. after a clean shutdown. */
  strict?: boolean;
  /**
   * The server store's record of the log's latest durable checkpoint (readAuditAnchor): the log must still
   * hold that line, or verification fails with kind "truncated" or "replaced".
   */
  anchor?: { seq: number; head: string };
  /**
   * A checkpoint recorded outside the server (lastCheckpointSeq and lastCheckpointHead of an earlier run):
   * checked as `anchor` is, so a log cut back to an earlier checkpoint in both the file and the store fails.
   */
  expect?: { seq: number; head: string };
}

export interface TailOptions {
  /** Lines printed before following; default 10. */
  lines?: number;
  /** Keep printing lines appended later, until `signal` aborts; default false. */
  follow?: boolean;
  signal?: AbortSignal;
  /** How often a followed file is checked for growth; default 200 ms. */
  intervalMs?: number;
  onLine(line: string): void;
  /** What a follower noticed (the file replaced, truncated, missing): one line for the operator's stderr. */
  onNotice?: (message: string) => void;
}
