import { createSecretKey, type KeyObject } from "node:crypto";
import { constants, fdatasync, writeSync } from "node:fs";
import { open, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { FleetError, fail } from "../errors/index.js";
import type { Signer } from "../keys/types.js";
import type { AuditAnchor } from "./anchor.js";
import { anchorProblem, findRotatedLog, readChainState, type ChainState } from "./chain-state.js";
import { AUDIT_FORMAT, GENESIS_PREV, chainLine, checkpointPayload, keyIdOf } from "./format.js";
import { flatString } from "./json.js";
import { LineBatch } from "./line-batch.js";
import { hmacSha256, jsonSafe, redactToJsonFields, sealedHasher, type StringHasher } from "./redact.js";
import type { AuditEntry, AuditOptions, CheckpointReason } from "./types.js";
import { GroupSync, SYNC_GAP_MS } from "../util/group-sync.js";
import { LoopLoad } from "../util/loop-load.js";

/** How many token/accessor HMACs are remembered (see setHmacKey). */
const IDENTITY_CACHE = 1024;

/**
 * Lines nobody waits for (entries of reads) are synced at most this long after they were written: an
 * fdatasync costs the kernel a few hundred microseconds of CPU, so back-to-back background syncs under
 * a stream of reads would cost more than the reads. Durable entries never wait for this.
 */
const BACKGROUND_SYNC_MS = 20;

/** Upper bound on entries per durable write, so one batch's latency stays bounded under a flood. */
const MAX_BATCH = 4096;

/**
 * Appends only. Lines are written with write(2) from the event loop (a page-cache copy of a few KB), and
 * made durable by fdatasync(2) on the thread pool, so writing never waits for the disk and one sync
 * covers everything written before it started.
 */
const APPEND = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT;

type Pending =
  | {
      kind: "entry";
      /** The entry's JSON without its opening "{" (redactToJsonFields). */
      fields: string;
      time: string;
      durable: boolean;
      resolve(): void;
      reject(e: unknown): void;
    }
  | { kind: "checkpoint"; reason: CheckpointReason; resolve(): void; reject(e: unknown): void };

/**
 * The append-only, hash-chained audit log. Entries queued in one event-loop turn are chained and written
 * with one write(2) at the end of the turn. log() resolves once its line is written — and, for a durable
 * entry (the default), once an fdatasync that started after the write has finished: concurrent durable
 * entries share one sync (group commit), and a sync runs whenever written bytes are not yet synced, so
 * non-durable entries reach the disk one sync later. Any write or sync failure fails the log closed:
 * every pending and later call rejects with FR_AUDIT_FAILED until the log is reopened.
 */
export class AuditLog {
  private readonly keyId: string;
  private readonly every: number;
  private seq: number;
  private head: string;
  private sinceCheckpoint: number;
  /** Written at the front of the first batch: the genesis line of a new file, or the signed reopen checkpoint. */
  private preamble: "genesis" | "open" | undefined;
  private queue: Pending[] = [];
  private flushing = false;
  private flushScheduled = false;
  private readonly group: GroupSync;
  /** Whether the event loop is busy: the commit delay applies only then (GroupSync). */
  private readonly load = new LoopLoad();
  private entriesQueued = 0;
  private failure: FleetError | undefined;
  private closed = false;
  private hmacKey: KeyObject | undefined;
  private hasher: StringHasher = sealedHasher;
  private identityHasher: StringHasher = sealedHasher;
  private writes = 0;
  private linesWritten = 0;
  /** The batch being rendered, as the bytes written; reused from one batch to the next. */
  private readonly out = new LineBatch();
  /** The last genesis or checkpoint line rendered and not yet handed to opts.onAnchor. */
  private pendingAnchor: AuditAnchor | undefined;
  /** opts.onAnchor calls, one after another, in seq order. */
  private anchorChain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly opts: AuditOptions,
    private readonly fh: FileHandle,
    state: ChainState | undefined,
    /** Why the log did not reach opts.anchor, when opts.acceptLoss let it open anyway. */
    readonly lossAccepted: string | undefined,
    /** The rotated-away file that holds opts.anchor, when this one is new (see findRotatedLog). */
    readonly rotatedFrom: string | undefined,
  ) {
    this.keyId = keyIdOf(opts.signer.publicKey);
    this.every = opts.checkpointEvery ?? 1000;
    this.seq = state?.seq ?? 0;
    this.head = state?.head ?? GENESIS_PREV;
    this.sinceCheckpoint = state?.sinceCheckpoint ?? 0;
    this.preamble = state ? "open" : "genesis";
    this.group = new GroupSync(
      () => new Promise<void>((resolve, reject) => fdatasync(fh.fd, (e) => (e ? reject(e) : resolve()))),
      BACKGROUND_SYNC_MS,
      SYNC_GAP_MS,
      () => this.load.busy(),
    );
  }

  /** Opens (or creates, mode 0600) the log at opts.path and continues its chain from the file's tail. */
  static async open(opts: AuditOptions): Promise<AuditLog> {
    const every = opts.checkpointEvery ?? 1000;
    if (!Number.isSafeInteger(every) || every < 1) {
      fail("FR_CONFIG_INVALID", `audit checkpointEvery must be a positive integer, not ${String(every)}`);
    }
    const existed = await stat(opts.path).then(
      () => true,
      () => false,
    );
    let fh: FileHandle;
    try {
      fh = await open(opts.path, APPEND, 0o600);
    } catch (e) {
      fail(
        "FR_AUDIT_FILE",
        `cannot open audit log ${opts.path} for appending (${errText(e)}); ` +
          "the path must name a file in an existing directory the server can write",
        { cause: e },
      );
    }
    try {
      const st = await fh.stat();
      const keyId = keyIdOf(opts.signer.publicKey);
      const state =
        st.isFile() && st.size > 0 ? await readChainState(fh, st.size, keyId, opts.path) : undefined;
      let problem: string | undefined;
      let rotatedFrom: string | undefined;
      if (opts.anchor) {
        problem = await anchorProblem(fh, state ? (await fh.stat()).size : 0, state, opts.anchor, keyId);
        // A new file is a rotation when the anchored line is in the log moved aside next to it.
        if (problem && !state && opts.anchor.keyId === keyId) {
          rotatedFrom = await findRotatedLog(opts.path, opts.anchor);
          if (rotatedFrom) problem = undefined;
          else
            problem += ` (a rotated log is recognised next to it, uncompressed, as ${basename(opts.path)}.<suffix>)`;
        }
        if (problem && !opts.acceptLoss) {
          fail(
            "FR_AUDIT_TAMPERED",
            `${opts.path} has lost lines: ${problem}. Restore the file from a backup; or, to go on ` +
              "with the log as it is, start the server once with --accept-audit-loss (the loss is recorded " +
              "in the log)",
          );
        }
      }
      if (!existed) await syncDirectory(dirname(opts.path));
      return new AuditLog(opts, fh, state, problem, rotatedFrom);
    } catch (e) {
      await fh.close().catch(() => undefined);
      // A refused open leaves no trace: a file it created (the log was missing) goes again.
      if (!existed) await unlink(opts.path).catch(() => undefined);
      if (e instanceof FleetError) throw e;
      fail("FR_AUDIT_FILE", `cannot read audit log ${opts.path} (${errText(e)})`, { cause: e });
    }
  }

  /** Sets the per-install HMAC key after unseal; undefined (on seal) makes sensitive strings "[sealed]". */
  setHmacKey(key: Uint8Array | undefined): void {
    if (key === undefined) {
      this.hmacKey = undefined;
      this.hasher = sealedHasher;
      this.identityHasher = sealedHasher;
      return;
    }
    if (key.length < 16)
      fail("FR_INTERNAL", `the audit HMAC key must be at least 16 bytes, not ${key.length}`);
    const k = createSecretKey(Buffer.from(key));
    // HMAC with a raw Buffer key is about 40% faster than with a KeyObject; the bytes stay in this object.
    const raw = Buffer.from(key);
    this.hmacKey = k;
    // Empty strings are common in response data (an unset deletion_time, say): their HMAC is computed once.
    const empty = flatString(hmacSha256(raw, ""));
    this.hasher = jsonSafe((v) => (v === "" ? empty : hmacSha256(raw, v)));
    // Tokens and accessors repeat on every request of a client: their HMACs are kept in a small bounded
    // cache (dropped with the key on seal). Secret values in request and response data are never cached.
    const cache = new Map<string, string>();
    this.identityHasher = jsonSafe((v) => {
      let h = cache.get(v);
      if (h === undefined) {
        if (cache.size >= IDENTITY_CACHE) cache.clear();
        // Flat: a cached hash goes into many lines (see flatString).
        h = flatString(hmacSha256(raw, v));
        cache.set(v, h);
      }
      return h;
    });
  }

  /** "hmac-sha256:<hex>" of `value` under the audit HMAC key, as sys/audit-hash returns it. */
  hash(value: string): string {
    if (!this.hmacKey) fail("FR_SEALED", "the audit HMAC key is available only while unsealed");
    return hmacSha256(this.hmacKey, value);
  }

  /**
   * Appends one entry; resolves once it is written and, unless `durable` is false, synced to disk.
   * Rejects with FR_AUDIT_FAILED when it cannot be written. A non-durable entry still fails closed: its
   * write(2) must succeed, and a later sync failure fails the whole log.
   */
  log(entry: AuditEntry, durable = true): Promise<void> {
    try {
      this.assertWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    // Redact and serialize now: the HMAC key in force and the caller's objects as they are at call time count.
    const fields = redactToJsonFields(entry, this.hasher, this.identityHasher);
    const time = this.isoNow();
    this.entriesQueued++;
    return new Promise<void>((resolve, reject) => {
      this.push({ kind: "entry", fields, time, durable, resolve, reject });
    });
  }

  /** Writes a signed checkpoint now (unless nothing was written since the last one) and waits until durable. */
  async checkpoint(): Promise<void> {
    this.assertWritable();
    return this.enqueue((resolve, reject) => ({ kind: "checkpoint", reason: "request", resolve, reject }));
  }

  /** Flushes pending entries, writes the final "close" checkpoint and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let error: unknown = this.failure;
    // A reopened log that wrote nothing and whose last line is a checkpoint stays byte-for-byte as it was;
    // one whose tail is unsigned (a crash left lines after the last checkpoint) gets its "open" checkpoint
    // now, so the lines the crash left do not stay unsigned restart after restart.
    if (!error && !(this.preamble === "open" && this.entriesQueued === 0 && this.sinceCheckpoint === 0)) {
      await this.enqueue((resolve, reject) => ({
        kind: "checkpoint",
        reason: "close",
        resolve,
        reject,
      })).catch((e: unknown) => {
        error = e;
      });
    }
    await this.group.settle();
    await this.anchorChain;
    await this.fh.close().catch(() => undefined);
    if (error) throw error;
  }

  private lastMs = Number.NaN;
  private lastIso = "";

  /** The clock's time in ISO form; the string is reused within one millisecond. */
  private isoNow(): string {
    const ms = this.opts.clock.nowMs();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  /** Seq of the last line assigned; 0 for a new, still empty log. */
  get lastSeq(): number {
    return this.seq;
  }

  /** fdatasync calls and lines written: lines / syncs is the group-commit batch size. */
  get stats(): { writes: number; syncs: number; lines: number } {
    return { writes: this.writes, syncs: this.group.syncs, lines: this.linesWritten };
  }

  /** The error that failed the log closed, if any. */
  get failed(): FleetError | undefined {
    return this.failure;
  }

  private assertWritable(): void {
    // A background sync (of entries nobody waited for) that failed fails the log too.
    if (!this.failure && this.group.failed !== undefined) this.failWith(this.group.failed, []);
    if (this.failure) throw this.failure;
    if (this.closed) fail("FR_AUDIT_FAILED", `the audit log ${this.opts.path} is closed`);
  }

  private enqueue(make: (resolve: () => void, reject: (e: unknown) => void) => Pending): Promise<void> {
    return new Promise<void>((resolve, reject) => this.push(make(resolve, reject)));
  }

  private push(p: Pending): void {
    this.queue.push(p);
    if (!this.flushScheduled && !this.flushing) {
      this.flushScheduled = true;
      // Everything queued in this event-loop turn goes out in one write.
      setImmediate(() => {
        this.flushScheduled = false;
        void this.flush();
      });
    }
  }

  /** The single writer: chains everything queued, writes it, repeats; then makes sure a sync follows. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.failure) {
        if (this.group.failed !== undefined) {
          this.failWith(this.group.failed, []);
          break;
        }
        const batch = this.queue.splice(0, MAX_BATCH);
        const seqBefore = this.seq;
        try {
          this.out.reset();
          const rendered = this.render(batch);
          if (rendered !== undefined) await rendered;
          if (this.out.length > 0) {
            this.writeAll();
            this.writes++;
            this.linesWritten += this.seq - seqBefore;
          }
        } catch (e) {
          this.failWith(e, batch);
          break;
        }
        const waiting = batch.filter((p) => p.kind !== "entry" || p.durable);
        for (const p of batch) if (p.kind === "entry" && !p.durable) p.resolve();
        const anchor = this.pendingAnchor;
        this.pendingAnchor = undefined;
        if (waiting.length > 0 || anchor) {
          this.group.durable().then(
            () => {
              // Recorded only once durable: a record ahead of the file would read as lost lines after a crash.
              if (anchor) this.recordAnchor(anchor);
              for (const p of waiting) p.resolve();
            },
            (e: unknown) => this.failWith(e, waiting),
          );
        } else {
          this.group.kick();
        }
      }
      if (this.failure) this.failWith(undefined, this.queue.splice(0));
    } finally {
      this.flushing = false;
    }
  }

  /** Fails the log closed: the given batch, every sync waiter and everything queued reject with one error. */
  private failWith(cause: unknown, batch: Pending[]): void {
    if (!this.failure) {
      this.failure = new FleetError(
        "FR_AUDIT_FAILED",
        `cannot write the audit log ${this.opts.path} (${errText(cause)}); ` +
          "requests are refused until the log is writable and the server reopens it",
        { cause },
      );
    }
    for (const p of batch) p.reject(this.failure);
    if (!this.flushing) for (const p of this.queue.splice(0)) p.reject(this.failure);
  }

  /**
   * Turns a batch into chained lines in `out`, in queue order; seq and prev advance only here, so the
   * chain is strict. Synchronous unless a checkpoint must be signed.
   */
  private render(batch: Pending[]): Promise<void> | undefined {
    if (this.preamble === "genesis") {
      this.append(this.genesisBody().slice(1), this.opts.clock.now().toISOString());
      this.pendingAnchor = { keyId: this.keyId, seq: this.seq, head: this.head };
      this.preamble = undefined;
    } else if (this.preamble === "open") {
      return this.renderSlow(batch, 0);
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      if (p.kind !== "entry" || this.sinceCheckpoint + 1 >= this.every) return this.renderSlow(batch, i);
      this.append(p.fields, p.time);
    }
    return undefined;
  }

  private async renderSlow(batch: Pending[], from: number): Promise<void> {
    if (this.preamble === "open") await this.checkpointLine("open");
    this.preamble = undefined;
    for (let i = from; i < batch.length; i++) {
      const p = batch[i] as Pending;
      if (p.kind === "entry") {
        this.append(p.fields, p.time);
        if (this.sinceCheckpoint >= this.every) await this.checkpointLine("interval");
      } else if (this.sinceCheckpoint > 0 || p.reason === "close") {
        await this.checkpointLine(p.reason);
      }
    }
  }

  /** Hands a durable anchor to opts.onAnchor, after the ones before it; a failure there is its own to report. */
  private recordAnchor(anchor: AuditAnchor): void {
    const onAnchor = this.opts.onAnchor;
    if (!onAnchor) return;
    this.anchorChain = this.anchorChain.then(() => onAnchor(anchor)).catch(() => undefined);
  }

  private append(fields: string, time: string): void {
    this.head = this.out.line(chainLine(++this.seq, time, this.head, fields));
    this.sinceCheckpoint++;
  }

  private genesisBody(): string {
    const s = this.opts.signer;
    return JSON.stringify({
      type: "genesis",
      format: AUDIT_FORMAT,
      key_id: this.keyId,
      key_algorithm: s.algorithm,
      public_key: Buffer.from(s.publicKey).toString("base64"),
    });
  }

  private async checkpointLine(reason: CheckpointReason): Promise<void> {
    const signer: Signer = this.opts.signer;
    const fields = {
      seq: this.seq + 1,
      time: this.opts.clock.now().toISOString(),
      prev: this.head,
      count: this.sinceCheckpoint,
      reason,
      key_id: this.keyId,
      algorithm: signer.defaultScheme,
    };
    const signature = await signer.sign(checkpointPayload(fields), signer.defaultScheme);
    const line = JSON.stringify({
      seq: fields.seq,
      time: fields.time,
      prev: fields.prev,
      type: "checkpoint",
      count: fields.count,
      reason,
      key_id: fields.key_id,
      algorithm: fields.algorithm,
      signature: Buffer.from(signature).toString("base64"),
    });
    this.seq = fields.seq;
    this.head = this.out.line(line);
    this.sinceCheckpoint = 0;
    this.pendingAnchor = { keyId: this.keyId, seq: this.seq, head: this.head };
  }

  /** Writes the rendered batch; a short write (a regular file gives one only when nearly full) is finished. */
  private writeAll(): void {
    const fd = this.fh.fd;
    const { bytes, length } = this.out;
    let off = 0;
    while (off < length) {
      const n = writeSync(fd, bytes, off, length - off);
      if (n <= 0) throw new Error("the write made no progress");
      off += n;
    }
    this.group.wrote();
  }
}

/** Makes a newly created file's directory entry durable too; filesystems that cannot fsync a directory are let be. */
async function syncDirectory(dir: string): Promise<void> {
  let d: FileHandle | undefined;
  try {
    d = await open(dir, "r");
    await d.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw e;
  } finally {
    await d?.close();
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}: ${err.message}` : String((e as Error)?.message ?? e);
}
