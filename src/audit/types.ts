import type { Signer } from "../keys/types.js";
import type { Clock } from "../util/clock.js";

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
}

/** Why a checkpoint was written; signed, so a clean close cannot be faked away. */
export type CheckpointReason = "interval" | "request" | "open" | "close";

export type ProblemKind =
  "edited" | "removed" | "reordered" | "inserted" | "bad-signature" | "malformed" | "unsigned-tail";

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
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** SPKI DER the checkpoints must verify under; default the key in the genesis line. */
  publicKey?: Uint8Array;
  /** Fail (kind "unsigned-tail") on any line after the last checkpoint, e.g. after a clean shutdown. */
  strict?: boolean;
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
