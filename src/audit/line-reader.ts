import type { FileHandle } from "node:fs/promises";
import { lineHash } from "./format.js";

const NL = 0x0a;
const CHUNK = 1024 * 1024;
/** A line longer than this is reported malformed rather than buffered without bound. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface RawLine {
  /** 1-based line number. */
  no: number;
  bytes: Buffer;
  /** False for a last line with no "\n" (a write cut short) and for an over-long line. */
  terminated: boolean;
  overlong: boolean;
}

/** Forward line reader with look-ahead, which verify needs to tell an edit from a removal or a reorder. */
export class LineReader {
  private buffered: RawLine[] = [];
  private carry: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  private no = 0;
  private skipping = false;
  private readonly hashes = new WeakMap<RawLine, string>();

  constructor(private readonly fh: FileHandle) {}

  async next(): Promise<RawLine | undefined> {
    if (this.buffered.length === 0) await this.fill(1);
    return this.buffered.shift();
  }

  /** The line `i` places after the one next() returned last (0 = the very next), if the file has it. */
  async peek(i: number): Promise<RawLine | undefined> {
    if (this.buffered.length <= i) await this.fill(i + 1);
    return this.buffered[i];
  }

  /** SHA-256 of a line's bytes, computed once. */
  hash(line: RawLine): string {
    let h = this.hashes.get(line);
    if (h === undefined) {
      h = lineHash(line.bytes);
      this.hashes.set(line, h);
    }
    return h;
  }

  private async fill(want: number): Promise<void> {
    const chunk = Buffer.alloc(CHUNK);
    while (this.buffered.length < want && !this.eof) {
      const { bytesRead } = await this.fh.read(chunk, 0, CHUNK, this.pos);
      if (bytesRead === 0) {
        this.eof = true;
        if (this.carry.length > 0 && !this.skipping) this.push(this.carry, false, false);
        this.carry = Buffer.alloc(0);
        break;
      }
      this.pos += bytesRead;
      this.split(chunk.subarray(0, bytesRead));
    }
  }

  private split(data: Buffer): void {
    let start = 0;
    for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, start)) {
      if (!this.skipping) {
        const part = data.subarray(start, i);
        this.push(this.carry.length ? Buffer.concat([this.carry, part]) : Buffer.from(part), true, false);
      }
      this.skipping = false;
      this.carry = Buffer.alloc(0);
      start = i + 1;
    }
    if (this.skipping) return;
    const rest = data.subarray(start);
    if (this.carry.length + rest.length > MAX_LINE_BYTES) {
      // Report the line once, then drop its bytes up to the next "\n".
      this.push(Buffer.concat([this.carry, rest]).subarray(0, 256), false, true);
      this.carry = Buffer.alloc(0);
      this.skipping = true;
    } else if (rest.length) {
      this.carry = Buffer.concat([this.carry, rest]);
    }
  }

  private push(bytes: Buffer, terminated: boolean, overlong: boolean): void {
    this.buffered.push({ no: ++this.no, bytes, terminated, overlong });
  }
}
