import { describe, expect, it } from "vitest";
import { flatString, isPlainJsonString, jsonString } from "./json.js";

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

describe("jsonString", () => {
  it("writes exactly what JSON.stringify writes", () => {
    for (const s of samples) expect(jsonString(s)).toBe(JSON.stringify(s));
  });

  it("calls a string plain only when JSON.stringify would just quote it", () => {
    for (const s of samples) if (isPlainJsonString(s)) expect(JSON.stringify(s)).toBe(`"${s}"`);
  });
});

describe("flatString", () => {
  it("gives back the same string, whatever it holds, built in pieces or not", () => {
    for (const s of samples) {
      expect(flatString(s)).toBe(s);
      const built = "{" + s + "," + s + "}";
      expect(flatString(built)).toBe(built);
    }
  });
});
