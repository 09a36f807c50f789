import type { FileHandle } from "node:fs/promises";

const NL = 0x0a;
const CHUNK = 64 * 1024;

/** Reads exactly `length` bytes at `position` (short reads happen on some filesystems). */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await fh.read(buf, off, length - off, position + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off === length ? buf : buf.subarray(0, off);
}

/** Offset just past the last "\n" in the first `size` bytes; 0 when there is none. */
export async function endOfLastLine(fh: FileHandle, size: number): Promise<number> {
  let pos = size;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const chunk = await readAt(fh, pos, len);
    const i = chunk.lastIndexOf(NL);
    if (i >= 0) return pos + i + 1;
  }
  return 0;
}

/**
 * Yields the lines of bytes [0, end) from the last to the first, without their "\n". `end` must sit just past
 * a "\n" (or be 0), as endOfLastLine() returns; so reading the tail of a large file touches only the tail.
 */
export async function* linesBackward(fh: FileHandle, end: number): AsyncGenerator<Buffer> {
  if (end <= 0) return;
  let pos = end - 1; // drop the final "\n": every "\n" left separates two lines
  let carry: Buffer = Buffer.alloc(0);
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf: Buffer = Buffer.concat([await readAt(fh, pos, len), carry]);
    let stop = buf.length;
    let i = buf.lastIndexOf(NL, stop - 1);
    while (i >= 0) {
      yield buf.subarray(i + 1, stop);
      stop = i;
      // Buffer.lastIndexOf reads a negative offset as counted from the end, so stop at the start explicitly.
      i = stop > 0 ? buf.lastIndexOf(NL, stop - 1) : -1;
    }
    carry = buf.subarray(0, stop);
  }
  yield carry;
}

/** The first line (without "\n") when it ends within `max` bytes; undefined otherwise. */
export async function firstLine(fh: FileHandle, size: number, max = CHUNK): Promise<Buffer | undefined> {
  const head = await readAt(fh, 0, Math.min(size, max));
  const i = head.indexOf(NL);
  return i >= 0 ? head.subarray(0, i) : undefined;
}
