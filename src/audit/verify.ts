import type { KeyObject } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { fail } from "../errors/index.js";
import { classifyBreak } from "./classify.js";
import {
  AUDIT_FORMAT,
  GENESIS_PREV,
  checkpointPayload,
  keyIdOf,
  publicKeyFromSpki,
  verifySignature,
} from "./format.js";
import { LineReader, MAX_LINE_BYTES, type RawLine } from "./line-reader.js";
import { parseCheckpoint, parseLine, type ParsedLine } from "./parse-line.js";
import type { CheckpointReason, VerifyOptions, VerifyProblem, VerifyResult } from "./types.js";

const entryTypes: ReadonlySet<string> = new Set(["request", "response", "event"]);

/**
 * Recomputes the hash chain of an audit log and checks every checkpoint signature, with opts.publicKey when
 * given (trust comes from outside the file) or else the key in the genesis line (which only proves the file
 * is self-consistent). Stops at, and names, the first problem. Lines after the last checkpoint are reported
 * in `unsignedTail`; they fail verification only with opts.strict, or when they follow a clean close.
 */
export async function verifyAuditLog(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    fail("FR_AUDIT_FILE", `cannot read audit log ${path} (${(e as Error).message})`, { cause: e });
  }
  try {
    if (!(await fh.stat()).isFile())
      fail("FR_AUDIT_FILE", `cannot read audit log ${path}: it is not a regular file (a directory?)`);
    return await new Verifier(new LineReader(fh), opts).run();
  } finally {
    await fh.close();
  }
}

class Verifier {
  private readonly result: VerifyResult;
  private key: KeyObject | undefined;
  private prevHash = GENESIS_PREV;
  private prevPrevHash: string | undefined;
  private lastCheckpoint: { seq: number; reason: CheckpointReason | undefined } = {
    seq: 0,
    reason: undefined,
  };
  /** Set by check() when the line it passed was a checkpoint. */
  private checkpointed = false;
  /** What the log must still hold: the store's record, a checkpoint kept outside the server. */
  private readonly marks: ReadonlyArray<{
    seq: number;
    head: string;
    by: string;
    field: "anchorSeq" | "expectedSeq";
  }>;

  constructor(
    private readonly reader: LineReader,
    private readonly opts: VerifyOptions,
  ) {
    this.result = {
      ok: true,
      lines: 0,
      entries: 0,
      checkpoints: 0,
      lastCheckpointSeq: 0,
      lastSeq: 0,
      keySource: "none",
    };
    this.marks = [
      ...(opts.anchor
        ? [{ ...opts.anchor, by: "the server's store recorded", field: "anchorSeq" as const }]
        : []),
      ...(opts.expect ? [{ ...opts.expect, by: "was expected", field: "expectedSeq" as const }] : []),
    ];
    if (opts.publicKey) {
      try {
        this.useKey(opts.publicKey, "option");
      } catch (e) {
        fail(
          "FR_KEY_FORMAT",
          "the public key given to verify the audit log is not a DER SubjectPublicKeyInfo",
          { cause: e },
        );
      }
    }
  }

  async run(): Promise<VerifyResult> {
    for (let raw = await this.reader.next(); raw; raw = await this.reader.next()) {
      const problem = await this.check(raw);
      if (problem) return { ...this.result, ok: false, problem };
      this.result.lines++;
      this.prevPrevHash = this.prevHash;
      this.prevHash = this.reader.hash(raw);
      if (this.checkpointed) this.result.lastCheckpointHead = this.prevHash;
      for (const mark of this.marks) {
        if (this.result.lastSeq !== mark.seq) continue;
        if (this.prevHash !== mark.head) {
          const problem: VerifyProblem = {
            line: raw.no,
            seq: mark.seq,
            kind: "replaced",
            message:
              `line ${raw.no} (seq ${mark.seq}) is not the signed checkpoint that ${mark.by} at ` +
              `that seq (line hash ${mark.head.slice(0, 16)}…): the log was replaced by another one`,
          };
          return { ...this.result, ok: false, problem };
        }
        this.result[mark.field] = mark.seq;
      }
    }
    for (const mark of this.marks) {
      if (this.result.lastSeq >= mark.seq) continue;
      const { lines, lastSeq } = this.result;
      const problem: VerifyProblem = {
        line: lines + 1,
        seq: lastSeq + 1,
        kind: "truncated",
        message:
          (lines === 0 ? "the file is empty" : `the log ends at seq ${lastSeq} (line ${lines})`) +
          `, but a signed checkpoint at seq ${mark.seq} ${mark.by}: ` +
          (lastSeq + 1 === mark.seq
            ? `line ${mark.seq} (at least) was removed from its end`
            : `lines ${lastSeq + 1}–${mark.seq} (at least) were removed from its end`),
      };
      return { ...this.result, ok: false, problem };
    }
    if (this.result.lines === 0) {
      return {
        ...this.result,
        ok: false,
        problem: {
          line: 1,
          kind: "malformed",
          message: "the file is empty: an audit log starts with a genesis line",
        },
      };
    }
    const { lastSeq } = this.result;
    const cp = this.lastCheckpoint.seq;
    if (lastSeq > cp) {
      const tail = { line: this.result.lines - (lastSeq - cp) + 1, seq: cp + 1, count: lastSeq - cp };
      this.result.unsignedTail = tail;
      if (this.opts.strict) {
        const problem: VerifyProblem = {
          line: tail.line,
          seq: tail.seq,
          kind: "unsigned-tail",
          message: `${tail.count} line(s) after the last checkpoint (seq ${cp}) are not covered by a signature`,
        };
        return { ...this.result, ok: false, problem };
      }
    }
    return this.result;
  }

  /** Checks one line against the chain and its own rules; returns the problem, if any. */
  private async check(raw: RawLine): Promise<VerifyProblem | undefined> {
    const L = raw.no;
    this.checkpointed = false;
    if (raw.overlong)
      return { line: L, kind: "malformed", message: `line ${L} is longer than ${MAX_LINE_BYTES} bytes` };
    const line = parseLine(raw.bytes);
    if (typeof line === "string") {
      const cut = raw.terminated
        ? ""
        : " (the file ends inside it: a write was cut short; the server drops it on reopen)";
      return { line: L, kind: "malformed", message: `line ${L}: ${line}${cut}` };
    }
    const expectedSeq = this.result.lastSeq + 1;
    if (line.seq !== expectedSeq || line.prev !== this.prevHash) {
      return classifyBreak(this.reader, {
        line: raw,
        seq: line.seq,
        prev: line.prev,
        expectedSeq,
        expectedPrev: this.prevHash,
        prevPrev: L === 1 ? undefined : L === 2 ? GENESIS_PREV : this.prevPrevHash,
      });
    }
    if (this.lastCheckpoint.reason === "close" && this.lastCheckpoint.seq === this.result.lastSeq) {
      if (line.type !== "checkpoint" || line.obj.reason !== "open") {
        return {
          line: L,
          seq: line.seq,
          kind: "unsigned-tail",
          message: `the log was closed cleanly at seq ${this.result.lastSeq}, and line ${L} was appended after it without the signed reopen checkpoint`,
        };
      }
    }
    const problem = L === 1 ? this.checkGenesis(line, L) : await this.checkBody(line, L);
    if (!problem) this.result.lastSeq = line.seq;
    return problem;
  }

  private checkGenesis(line: ParsedLine, L: number): VerifyProblem | undefined {
    const bad = (message: string): VerifyProblem => ({ line: L, seq: line.seq, kind: "malformed", message });
    const { type, format, key_id, public_key } = line.obj;
    if (type !== "genesis") return bad(`line 1 must be the genesis line, not type ${JSON.stringify(type)}`);
    if (format !== AUDIT_FORMAT)
      return bad(`the genesis line names format ${JSON.stringify(format)}, not ${AUDIT_FORMAT}`);
    if (typeof public_key !== "string") return bad("the genesis line has no public_key");
    const spki = Buffer.from(public_key, "base64");
    if (key_id !== keyIdOf(spki)) return bad("the genesis key_id is not the SHA-256 of its public_key");
    if (!this.key) {
      try {
        this.useKey(spki, "genesis");
      } catch {
        return bad("the genesis public_key is not a valid SubjectPublicKeyInfo");
      }
    } else if (key_id !== this.result.keyId) {
      // A log keeps its key for life (opening it with another key fails), so this is another install's log.
      return {
        line: L,
        seq: line.seq,
        kind: "bad-signature",
        message: `the log was started with key ${key_id}, not the given key ${String(this.result.keyId)}: it belongs to another install, or the wrong key was given`,
      };
    }
    return undefined;
  }

  private async checkBody(line: ParsedLine, L: number): Promise<VerifyProblem | undefined> {
    if (entryTypes.has(line.type)) {
      this.result.entries++;
      return undefined;
    }
    if (line.type === "genesis") {
      return {
        line: L,
        seq: line.seq,
        kind: "malformed",
        message: `line ${L} is a second genesis line; only line 1 may be one`,
      };
    }
    if (line.type !== "checkpoint") {
      return {
        line: L,
        seq: line.seq,
        kind: "malformed",
        message: `line ${L} has unknown type ${JSON.stringify(line.type)}`,
      };
    }
    const cp = parseCheckpoint(line.obj);
    if (typeof cp === "string")
      return { line: L, seq: line.seq, kind: "malformed", message: `line ${L}: ${cp}` };
    const expectedCount = line.seq - this.lastCheckpoint.seq - 1;
    if (cp.count !== expectedCount) {
      return {
        line: L,
        seq: line.seq,
        kind: "malformed",
        message: `checkpoint on line ${L} counts ${cp.count} lines, not ${expectedCount}`,
      };
    }
    const sig = (message: string): VerifyProblem => ({
      line: L,
      seq: line.seq,
      kind: "bad-signature",
      message,
    });
    if (!this.key) return sig("no public key to check the checkpoint with");
    if (cp.key_id !== this.result.keyId)
      return sig(`checkpoint on line ${L} names key ${cp.key_id}, not ${this.result.keyId}`);
    const payload = checkpointPayload({ seq: line.seq, time: line.time, prev: line.prev, ...cp });
    if (!verifySignature(this.key, cp.algorithm, payload, cp.signature)) {
      return sig(`the signature of the checkpoint on line ${L} does not verify under key ${cp.key_id}`);
    }
    this.result.checkpoints++;
    this.result.lastCheckpointSeq = line.seq;
    this.lastCheckpoint = { seq: line.seq, reason: cp.reason };
    this.checkpointed = true;
    return undefined;
  }

  private useKey(spki: Uint8Array, source: "option" | "genesis"): void {
    this.key = publicKeyFromSpki(spki);
    this.result.keySource = source;
    this.result.keyId = keyIdOf(spki);
  }
}
