/**
 * Certificate serial numbers (RFC 5280 4.1.2.2): positive INTEGERs of at most 20 octets, which here
 * includes the 0x00 sign octet an integer with its top bit set needs.
 */
import { randomBytes } from "node:crypto";
import { fail } from "../errors/index.js";
import { Tag, tlv, unsignedIntegerContent } from "./der.js";

export type Serial = Uint8Array | bigint;

/** INTEGER contents of a serial, checked positive and at most 20 octets. */
export function serialContent(serial: Serial): Uint8Array {
  let bytes: Uint8Array;
  if (typeof serial === "bigint") {
    if (serial <= 0n) fail("FR_CERT_TEMPLATE", "the serial number must be positive (RFC 5280 4.1.2.2)");
    const hex = serial.toString(16);
    bytes = Buffer.from(hex.length % 2 ? "0" + hex : hex, "hex");
  } else {
    bytes = serial;
  }
  const content = unsignedIntegerContent(bytes);
  if (content.length === 1 && content[0] === 0)
    fail("FR_CERT_TEMPLATE", "the serial number must not be zero (RFC 5280 4.1.2.2)");
  if (content.length > 20) {
    fail(
      "FR_CERT_TEMPLATE",
      `the serial number takes ${content.length} octets; RFC 5280 4.1.2.2 allows at most 20`,
    );
  }
  return content;
}

/** The serial as an encoded INTEGER. */
export const serialInteger = (serial: Serial): Buffer => tlv(Tag.INTEGER, serialContent(serial));

/**
 * A random positive serial of `bytes` octets (default 16: 127 bits of entropy, well above the 64 the
 * CA/Browser Forum asks for). The top bit is cleared so the encoding needs no sign octet.
 */
export function randomSerial(bytes = 16): Buffer {
  if (bytes < 9 || bytes > 20) fail("FR_VALIDATION", "a random serial must be 9 to 20 octets long");
  const b = randomBytes(bytes);
  b[0] = (b[0] as number) & 0x7f || 0x01;
  return b;
}

/** Lowercase hex of the serial's magnitude, no separators (the form stored and shown to users). */
export function serialHex(serial: Serial): string {
  return Buffer.from(serialContent(serial))
    .toString("hex")
    .replace(/^00(?=[89a-f])/, "");
}
