import { describe, expect, it } from "vitest";
import { jsonString } from "./json.js";

describe("jsonString", () => {
  it("writes exactly what JSON.stringify writes", () => {
    const samples = [
      "",
      "plain",
      "2026-11-23T18:00:00.000Z",
      'quote " inside',
      "back\\slash",
      "tab\there",
      "new\nline",
      "\u0000\u001f\u007f",
      "ünïcödé",
      "emoji 🚁",
      "lone \ud800 surrogate",
      "x".repeat(300),
      "~[]{}!#$%&'()*+,-./:;<=>?@^_`|",
    ];
    for (let c = 0; c < 0x180; c++) samples.push(`a${String.fromCharCode(c)}b`);
    for (const s of samples) expect(jsonString(s)).toBe(JSON.stringify(s));
  });
});
