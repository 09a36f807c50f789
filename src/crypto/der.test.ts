import { describe, expect, it } from "vitest";
import { isFleetError } from "../errors/index.js";
import {
  DerReader,
  encode,
  encodeName,
  explicit,
  fromPem,
  generalizedTime,
  integer,
  ipBytes,
  ipText,
  namedBits,
  oid,
  seq,
  serialHex,
  setOf,
  time,
  toPem,
  utf8String,
} from "./index.js";
import { writeLength } from "./der.js";
import { randomSerial } from "./serial.js";
import { runPeer } from "./test-helpers.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return "none";
  } catch (e) {
    return isFleetError(e) ? e.code : String(e);
  }
};

describe("DER writer", () => {
  it("encodes INTEGERs minimally with sign padding (X.690 8.3)", () => {
    expect(hex(integer(0))).toBe("020100");
    expect(hex(integer(127))).toBe("02017f");
    expect(hex(integer(128))).toBe("02020080");
    expect(hex(integer(256))).toBe("02020100");
    expect(hex(integer(-1))).toBe("0201ff");
    expect(hex(integer(-128))).toBe("020180");
    expect(hex(integer(-129))).toBe("0202ff7f");
    expect(hex(integer(2n ** 64n))).toBe("0209010000000000000000");
    expect(hex(integer(Buffer.from("0000ff", "hex")))).toBe("020200ff");
    expect(hex(integer(Buffer.from("00007f", "hex")))).toBe("02017f");
    expect(hex(integer(new Uint8Array(0)))).toBe("020100");
  });

  it("encodes OIDs (X.690 8.19) and caches them", () => {
    expect(hex(oid("1.2.840.113549"))).toBe("06062a864886f70d");
    expect(hex(oid("2.5.29.17"))).toBe("0603551d11");
    expect(hex(oid("2.999.3"))).toBe("0603883703");
    expect(oid("2.5.29.17")).toBe(oid("2.5.29.17"));
    expect(codeOf(() => oid("1.40"))).toBe("FR_VALIDATION");
    expect(codeOf(() => oid("abc"))).toBe("FR_VALIDATION");
  });

  it("uses short and long length forms", () => {
    const buf = Buffer.alloc(6);
    expect(writeLength(buf, 0, 127)).toBe(1);
    expect(writeLength(buf, 0, 128)).toBe(2);
    expect(hex(buf.subarray(0, 2))).toBe("8180");
    expect(writeLength(buf, 0, 0x10000)).toBe(4);
    expect(hex(buf.subarray(0, 4))).toBe("83010000");
    const big = encode(seq(Buffer.alloc(300, 0)));
    expect(hex(big.subarray(0, 4))).toBe("3082012c");
  });

  it("nests lazily and serializes once", () => {
    const der = encode(seq(integer(1), explicit(3, seq(utf8String("a"))), setOf([integer(2), integer(1)])));
    expect(hex(der)).toBe("3012" + "020101" + "a3053003" + "0c0161" + "3106020101020102");
    // Round trip through openssl asn1parse to check every length is right.
    const parsed = runPeer("openssl", ["asn1parse", "-inform", "DER"], der).stdout;
    expect(parsed).toMatch(
      /cons: SEQUENCE[\s\S]*INTEGER\s+:01[\s\S]*cont \[ 3 \][\s\S]*UTF8STRING\s+:a[\s\S]*SET[\s\S]*INTEGER\s+:01[\s\S]*INTEGER\s+:02/,
    );
  });

  it("writes named bit lists without trailing zero bits (X.690 11.2.2)", () => {
    expect(hex(namedBits([0]))).toBe("03020780"); // digitalSignature
    expect(hex(namedBits([5, 6]))).toBe("03020106"); // keyCertSign, cRLSign
    expect(hex(namedBits([0, 8]))).toBe("0303078080"); // digitalSignature, decipherOnly
  });

  it("switches UTCTime to GeneralizedTime at 2050 (RFC 5280 4.1.2.5)", () => {
    expect(time(Date.UTC(2049, 11, 31, 23, 59, 59, 999)).toString("latin1", 2)).toBe("491231235959Z");
    expect(time(Date.UTC(2050, 0, 1)).toString("latin1", 2)).toBe("20500101000000Z");
    expect(time(Date.UTC(1950, 0, 1))[0]).toBe(0x17);
    expect(time(Date.UTC(1949, 11, 31))[0]).toBe(0x18);
    expect(generalizedTime(Date.UTC(2026, 5, 7, 8, 9, 10)).toString("latin1", 2)).toBe("20260607080910Z");
    expect(codeOf(() => time(new Date(NaN)))).toBe("FR_VALIDATION");
  });

  it("encodes names with PrintableString country and UTF8String elsewhere", () => {
    const name = encodeName([
      { type: "C", value: "DE" },
      { type: "CN", value: "Drohne Ü" },
    ]);
    const text = runPeer("openssl", ["asn1parse", "-inform", "DER"], name).stdout;
    expect(text).toContain("PRINTABLESTRING   :DE");
    expect(text).toContain("UTF8STRING");
    expect(codeOf(() => encodeName([{ type: "C", value: "Germany" }]))).toBe("FR_CERT_TEMPLATE");
    expect(codeOf(() => encodeName([{ type: "XX", value: "a" }]))).toBe("FR_CERT_TEMPLATE");
    expect(hex(encodeName([]))).toBe("3000");
  });

  it("parses and prints IP addresses", () => {
    expect(hex(ipBytes("10.1.2.3"))).toBe("0a010203");
    expect(hex(ipBytes("::1"))).toBe("00000000000000000000000000000001");
    expect(hex(ipBytes("fd00::7"))).toBe("fd000000000000000000000000000007");
    expect(hex(ipBytes("::ffff:1.2.3.4"))).toBe("00000000000000000000ffff01020304");
    expect(hex(ipBytes("2001:db8:1:2:3:4:5:6"))).toBe("20010db8000100020003000400050006");
    expect(ipText(ipBytes("2001:db8::1"))).toBe("2001:db8::1");
    expect(ipText(ipBytes("1:0:0:2:0:0:0:3"))).toBe("1:0:0:2::3");
    expect(codeOf(() => ipBytes("1.2.3"))).toBe("FR_CERT_TEMPLATE");
  });

  it("makes random serials that are positive and 16 octets", () => {
    for (let i = 0; i < 50; i++) {
      const s = randomSerial();
      expect(s.length).toBe(16);
      expect((s[0] as number) & 0x80).toBe(0);
      expect(serialHex(s)).toMatch(/^[0-9a-f]+$/);
    }
    expect(serialHex(Buffer.from("00c0ffee", "hex"))).toBe("c0ffee");
    expect(serialHex(255n)).toBe("ff");
  });
});

describe("bounded DER reader", () => {
  const limits = { maxBytes: 64, maxDepth: 3, code: "FR_DER_INVALID", what: "the input" } as const;
  const read = (h: string) => () => {
    const r = new DerReader(Buffer.from(h, "hex"), limits);
    r.checkDepth(r.root());
  };

  it("accepts well-formed input and reads OIDs back", () => {
    expect(codeOf(read("3005020101" + "0500"))).toBe("none");
    expect(codeOf(read("3006020101" + "0500"))).toBe("FR_DER_INVALID"); // length 6 but 5 bytes follow
    const r = new DerReader(oid("1.2.840.10045.4.3.2"), limits);
    expect(r.oid(r.root())).toBe("1.2.840.10045.4.3.2");
  });

  it("refuses indefinite, non-minimal and overlong lengths, trailing bytes, depth and size", () => {
    expect(codeOf(read("30800000"))).toBe("FR_DER_INVALID");
    expect(codeOf(read("30810100"))).toBe("FR_DER_INVALID"); // 1 in long form
    expect(codeOf(read("3085ffffffffff"))).toBe("FR_DER_INVALID");
    expect(codeOf(read("30003000"))).toBe("FR_DER_INVALID");
    expect(codeOf(read("3008300630043002" + "3000"))).toBe("FR_DER_INVALID"); // depth 4 > 3
    expect(codeOf(read("3006300430023000"))).toBe("none"); // depth 3
    expect(codeOf(read("04" + "41" + "00".repeat(65)))).toBe("FR_DER_INVALID"); // over maxBytes
    expect(codeOf(read("1f0100"))).toBe("FR_DER_INVALID"); // high tag number
  });
});

describe("PEM", () => {
  it("round-trips with 64-character lines and checks labels", () => {
    const der = Buffer.alloc(100, 7);
    const text = toPem(der, "X509 CRL");
    expect(text.split("\n")[1]).toHaveLength(64);
    expect(text.startsWith("-----BEGIN X509 CRL-----\n")).toBe(true);
    expect(fromPem("leading text\n" + text, "X509 CRL").der.equals(der)).toBe(true);
    expect(fromPem(text).label).toBe("X509 CRL");
    expect(codeOf(() => fromPem(text, "CERTIFICATE"))).toBe("FR_PEM_INVALID");
    expect(codeOf(() => fromPem("nothing"))).toBe("FR_PEM_INVALID");
    expect(codeOf(() => fromPem(text.replace("END X509 CRL", "END CERTIFICATE")))).toBe("FR_PEM_INVALID");
    expect(codeOf(() => fromPem("-----BEGIN X-----\n-----END X-----\n"))).toBe("FR_PEM_INVALID");
  });
});
