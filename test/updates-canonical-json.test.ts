import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { canonicalJson, compareCodePoints, keyIdOf } from "../src/updates/index.js";

/**
 * Byte-exact outputs of securesystemslib 0.26's encode_canonical (Debian, the library python-tuf and
 * in-toto sign with), recorded as hex. JSON escapes in the inputs keep this file ASCII.
 */
const vectors: Array<[string, string]> = [
  [
    '{"b": 1, "a": [true, false, null], "c": {"z": "", "y": -5}}',
    "7b2261223a5b747275652c66616c73652c6e756c6c5d2c2262223a312c2263223a7b2279223a2d352c227a223a22227d7d",
  ],
  [
    '{"\\ue000": 1, "\\ud83d\\ude00": 2, "\\uffff": 3, "a": 4, "\\u00e9": 5, "\\ud800\\udc00": 6, "\\ud7ff": 7}',
    "7b2261223a342c22c3a9223a352c22ed9fbf223a372c22ee8080223a312c22efbfbf223a332c22f0908080223a362c22f09f9880223a327d",
  ],
  [
    '["quote\\" back\\\\slash", "nl\\n tab\\t ctl\\u0001 del\\u007f ls\\u2028", "\\u00e9\\u4e2d\\ud83d\\ude80"]',
    "5b2271756f74655c22206261636b5c5c736c617368222c226e6c0a20746162092063746c012064656c7f206c73e280a8222c22c3a9e4b8adf09f9a80225d",
  ],
  [
    '{"custom": {"\\ud83d\\udd11key": {"\\ue001": "v", "\\ud83d\\udd10": "w"}, "n": 0, "big": 9007199254740991, "neg": -1}}',
    "7b22637573746f6d223a7b22626967223a393030373139393235343734303939312c226e223a302c226e6567223a2d312c22f09f94916b6579223a7b22ee8081223a2276222c22f09f9490223a2277227d7d7d",
  ],
  ['""', "2222"],
  ["[]", "5b5d"],
  ["{}", "7b7d"],
];

describe("OLPC canonical JSON (securesystemslib byte-exact)", () => {
  it.each(vectors)("%s", (input, hex) => {
    expect(canonicalJson(JSON.parse(input)).toString("hex")).toBe(hex);
  });

  it("sorts keys by code point, where JavaScript's default sort does not", () => {
    const keys = ["\u{1F600}", "\uFFFF", "\uE000"];
    expect([...keys].sort()).toEqual(["\u{1F600}", "\uE000", "\uFFFF"]); // UTF-16 order
    expect([...keys].sort(compareCodePoints)).toEqual(["\uE000", "\uFFFF", "\u{1F600}"]);
  });

  it("refuses what canonical JSON cannot carry", () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(/integers/);
    expect(() => canonicalJson(["\uD800"])).toThrow(/surrogate/);
    expect(() => canonicalJson(new Date(0))).toThrow(/cannot encode/);
  });

  it("computes keyids as the TUF spec and in-toto 1.x do", () => {
    const key = { keytype: "ed25519", scheme: "ed25519", keyval: { public: "ab".repeat(32) } };
    const intoto = { ...key, keyid_hash_algorithms: ["sha256", "sha512"] };
    const py = `
import json,sys
from securesystemslib.keys import format_metadata_to_key
k=json.loads(sys.argv[1])
print(format_metadata_to_key(k)[0]["keyid"])`;
    const run = (k: unknown) =>
      execFileSync("/usr/bin/python3", ["-c", py, JSON.stringify(k)], { encoding: "utf8" }).trim();
    if (!existsSync("/usr/lib/python3/dist-packages/securesystemslib")) {
      throw new Error("securesystemslib is missing: install in-toto (scripts/install-test-deps.sh)");
    }
    // securesystemslib's own keyid (hashing keyid_hash_algorithms, as in-toto 1.3.1 does).
    expect(keyIdOf(intoto)).toBe(run(intoto));
    expect(keyIdOf(key)).not.toBe(keyIdOf(intoto));
  });

  it("matches securesystemslib live on generated tricky inputs", () => {
    const alphabet = [
      "a",
      "Z",
      '"',
      "\\",
      "\n",
      "\u0000",
      "\u00e9",
      "\uE000",
      "\uFFFF",
      "\u{10000}",
      "\u{1F600}",
      "\u2028",
    ];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const str = () => Array.from({ length: 1 + rnd(4) }, () => alphabet[rnd(alphabet.length)]).join("");
    const inputs = Array.from({ length: 40 }, () =>
      Object.fromEntries(
        Array.from({ length: 1 + rnd(6) }, () => [str(), rnd(3) === 0 ? [str(), rnd(1000)] : str()]),
      ),
    );
    const py = `
import json,sys
from securesystemslib.formats import encode_canonical
for c in json.load(sys.stdin): print(encode_canonical(c).encode("utf-8").hex())`;
    const out = execFileSync("/usr/bin/python3", ["-c", py], {
      input: JSON.stringify(inputs),
      encoding: "utf8",
    });
    expect(inputs.map((i) => canonicalJson(i).toString("hex"))).toEqual(out.trim().split("\n"));
  });
});
