import { describe, expect, it } from "vitest";
import { lineHash } from "./format.js";
import { LineBatch } from "./line-batch.js";

/** What the batch must hold for `lines`: each line's UTF-8 bytes and a newline, as Buffer.from writes them. */
const expected = (lines: string[]) => Buffer.from(lines.map((l) => l + "\n").join(""), "utf8");
const contents = (b: LineBatch) => Buffer.from(b.bytes.subarray(0, b.length));

describe("LineBatch", () => {
  it("holds each line's UTF-8 bytes and a newline, and returns the SHA-256 of the line's own bytes", () => {
    const lines = [
      '{"seq":1,"path":"kv/plain"}',
      '{"seq":2,"path":"kv/ünïcödé/路径/🤖"}', // 2-, 3- and 4-byte sequences
      "",
      '{"seq":4,"note":"\\u0000 escaped, not raw"}',
    ];
    const b = new LineBatch();
    const hashes = lines.map((l) => b.line(l));
    expect(contents(b)).toEqual(expected(lines));
    expect(hashes).toEqual(lines.map((l) => lineHash(l)));
    expect(b.length).toBe(expected(lines).length);
  });

  it("grows past its first 64 KB without losing the lines before, and returns its memory after a large batch", () => {
    const b = new LineBatch();
    const small = Array.from({ length: 50 }, (_, i) => `{"seq":${i},"pad":"${"x".repeat(900)}"}`);
    const big = `{"seq":50,"data":"${"é".repeat(1_500_000)}"}`; // 3 MB of UTF-8
    for (const l of small) b.line(l);
    expect(b.line(big)).toBe(lineHash(big));
    b.line("{}");
    expect(contents(b)).toEqual(expected([...small, big, "{}"]));
    expect(b.bytes.length).toBeGreaterThan(1024 * 1024);

    b.reset();
    expect(b.length).toBe(0);
    expect(b.bytes.length).toBe(64 * 1024);
    expect(b.line('{"seq":52}')).toBe(lineHash('{"seq":52}'));
    expect(contents(b)).toEqual(expected(['{"seq":52}']));
  });

  it("keeps a moderately grown buffer from batch to batch, starting each batch empty", () => {
    const b = new LineBatch();
    const l = `{"pad":"${"y".repeat(100_000)}"}`;
    b.line(l);
    const grown = b.bytes;
    b.reset();
    expect(b.bytes).toBe(grown);
    b.line("{}");
    expect(contents(b)).toEqual(expected(["{}"]));
  });
});
