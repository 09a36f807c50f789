import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { FleetError } from "../errors/index.js";
import type { ErrorCode } from "../errors/index.js";
import { startModuleWorker } from "../util/worker.js";
import { type ParsedCsr, parseCsr, verifyCsrSignature } from "./csr.js";
import type { CsrJob, CsrJobResult } from "./csr-worker.js";

interface Pending {
  resolve(csr: ParsedCsr): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

/**
 * Parses and verifies CSRs on worker threads, so issuance uses more than one core: the key import and
 * signature check are most of a certificate's CPU time. Threads start on first use (and, until they are
 * up, CSRs are handled on the calling thread); each CSR goes to the least busy thread. With `threads: 0`
 * everything runs on the calling thread. The result and the errors are the same either way.
 */
export class CsrVerifier {
  private slots: Slot[] | undefined;
  private starting = false;
  private closed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  readonly threads: number;

  constructor(opts: { threads?: number } = {}) {
    this.threads = opts.threads ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  }

  /** parseCsr + verifyCsrSignature. */
  parseAndVerify(input: Uint8Array | string, maxBytes: number): Promise<ParsedCsr> {
    if (!this.slots || this.closed) {
      if (this.threads > 0 && !this.starting && !this.closed) this.start();
      try {
        const csr = parseCsr(input, { maxBytes });
        verifyCsrSignature(csr);
        return Promise.resolve(csr);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.busy < slot.busy) slot = s;
    const id = ++this.nextId;
    slot.busy++;
    return new Promise<ParsedCsr>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (csr) => {
          slot.busy--;
          resolve(csr);
        },
        reject: (e) => {
          slot.busy--;
          reject(e);
        },
      });
      slot.worker.postMessage({ id, input, maxBytes } satisfies CsrJob);
    });
  }

  /** Stops the threads; later calls run on the calling thread. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots ?? [];
    this.slots = undefined;
    await Promise.all(slots.map((s) => s.worker.terminate()));
    for (const p of this.pending.values()) p.reject(new FleetError("FR_INTERNAL", "the CSR threads stopped"));
    this.pending.clear();
  }

  private start(): void {
    this.starting = true;
    const slots: Slot[] = [];
    let ready = 0;
    for (let i = 0; i < this.threads; i++) {
      const worker = startModuleWorker(import.meta.url, "csr-worker");
      worker.unref();
      const slot: Slot = { worker, busy: 0 };
      slots.push(slot);
      worker.on("message", (m: CsrJobResult) => this.onResult(m));
      worker.on("error", () => this.fallBack());
      worker.on("exit", () => {
        if (!this.closed) this.fallBack();
      });
      worker.on("online", () => {
        // The module is loaded a moment after "online"; a job posted now waits in the thread's queue.
        if (++ready === slots.length && !this.closed) this.slots = slots;
      });
    }
  }

  /** A thread failed: finish what it held on the calling thread's terms (an error), and stop using threads. */
  private fallBack(): void {
    const slots = this.slots ?? [];
    this.slots = undefined;
    this.closed = true;
    for (const s of slots) void s.worker.terminate();
    for (const p of this.pending.values())
      p.reject(new FleetError("FR_INTERNAL", "a CSR thread failed; retry the request"));
    this.pending.clear();
  }

  private onResult(m: CsrJobResult): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if ("error" in m) {
      const e = m.error;
      p.reject(
        e.code ? new FleetError(e.code as ErrorCode, e.detail) : new FleetError("FR_INTERNAL", e.message),
      );
      return;
    }
    p.resolve(rewrap(m.csr));
  }
}

/** Buffers arrive from a thread as plain Uint8Arrays: make them Buffers again, without copying. */
function rewrap(c: ParsedCsr): ParsedCsr {
  const b = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return {
    ...c,
    der: b(c.der),
    info: b(c.info),
    signature: b(c.signature),
    subject: { ...c.subject, der: b(c.subject.der) },
    publicKey: b(c.publicKey),
    extensions: c.extensions.map((e) => ({ ...e, value: b(e.value) })),
  };
}
