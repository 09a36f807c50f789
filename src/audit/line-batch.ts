import { lineHash } from "./format.js";

/** Capacity a batch starts with and returns to: a batch of reads is ~45 lines of under 1 KB. */
const INITIAL_BYTES = 64 * 1024;
/** A batch that grew past this (a few very large entries) gives its memory back once written. */
const KEEP_BYTES = 1024 * 1024;

/**
 * The lines of one audit batch as the UTF-8 bytes that go to write(2). Each line is encoded once, into a
 * buffer reused from batch to batch, and hashed for the chain from those same bytes: no batch-sized
 * string is built, and no line is converted to UTF-8 twice.
 */
export class LineBatch {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  private used = 0;

  /** Starts a new batch (the previous one must have been written). */
  reset(): void {
    this.used = 0;
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BYTES);
  }

  /** Appends `line` and a newline; returns the hex SHA-256 of the line's bytes (the next line's `prev`). */
  line(line: string): string {
    // A UTF-16 code unit never takes more than 3 bytes of UTF-8; one more for the newline.
    const room = line.length * 3 + 1;
    if (this.used + room > this.buf.length) this.grow(this.used + room);
    const start = this.used;
    const n = this.buf.write(line, start, "utf8");
    const h = lineHash(this.buf.subarray(start, start + n));
    this.buf[start + n] = 0x0a;
    this.used = start + n + 1;
    return h;
  }

  get length(): number {
    return this.used;
  }

  /** The buffer whose first `length` bytes are the batch. */
  get bytes(): Buffer {
    return this.buf;
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }
}
