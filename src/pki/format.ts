/**
 * Small conversions the PKI routes share: Vault's colon-separated serial form, PEM bundles, and the
 * key-type names Vault uses mapped to Fleetroot key algorithms.
 */
import { type KeyAlgorithm } from "../keys/index.js";
import { fromPem, toPem } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";
import { parseDuration } from "../util/duration.js";

/** "0a1b2c" → "0a:1b:2c" (Vault's serial_number form). */
export const colonSerial = (hex: string): string => hex.match(/../g)?.join(":") ?? hex;

/** Accepts "0a:1b", "0a-1b" or "0a1b" (any case); returns the stored form: lowercase hex, no sign octet. */
export function normalizeSerial(input: unknown): string {
  if (typeof input !== "string" || input.trim() === "")
    throw new FleetError("FR_VALIDATION", "serial_number is required (hex, e.g. 3a:4f:…)");
  let hex = input
    .trim()
    .toLowerCase()
    .replace(/[:\-\s]/g, "");
  if (!/^[0-9a-f]+$/.test(hex) || hex.length > 42)
    throw new FleetError(
      "FR_VALIDATION",
      `serial_number "${input}" is not a hex serial of at most 20 octets`,
    );
  if (hex.length % 2) hex = "0" + hex;
  while (hex.startsWith("00") && hex.length > 2) hex = hex.slice(2);
  return hex;
}

export const certPem = (der: Uint8Array): string => toPem(der, "CERTIFICATE");

/** Every CERTIFICATE block in a PEM bundle, in order. */
export function pemCertificates(text: unknown, field: string): Buffer[] {
  if (typeof text !== "string" || !text.includes("-----BEGIN"))
    throw new FleetError(
      "FR_VALIDATION",
      `${field} must hold PEM certificates (-----BEGIN CERTIFICATE-----)`,
    );
  const out: Buffer[] = [];
  const re = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g;
  for (const m of text.matchAll(re)) out.push(fromPem(m[0], "CERTIFICATE").der);
  if (out.length === 0) throw new FleetError("FR_VALIDATION", `${field} holds no PEM certificate`);
  return out;
}

/** Vault's key_type/key_bits → a Fleetroot key algorithm. */
export function keyAlgorithmOf(keyType: unknown, keyBits: unknown): KeyAlgorithm {
  const type = keyType === undefined || keyType === "" ? "ec" : keyType;
  const bits = keyBits === undefined || keyBits === "" || keyBits === 0 ? 0 : Number(keyBits);
  if (type === "ec") {
    if (bits === 0 || bits === 256) return "ecdsa-p256";
    if (bits === 384) return "ecdsa-p384";
  } else if (type === "rsa") {
    if (bits === 0 || bits === 2048) return "rsa-2048";
    if (bits === 3072) return "rsa-3072";
  } else if (type === "ed25519") {
    return "ed25519";
  }
  throw new FleetError(
    "FR_VALIDATION",
    `key_type "${String(type)}" with key_bits ${bits} is not supported; use ec (256, 384), rsa (2048, 3072) or ed25519`,
  );
}

/** Reads an optional string field. */
export function optString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new FleetError("FR_VALIDATION", `${field} must be a string`);
  return v;
}

/** Reads an optional duration field: a Vault duration string ("1h", "90m") or a number of seconds; absent is 0. */
export function optDuration(body: Record<string, unknown>, field: string): number {
  const v = body[field];
  if (v !== undefined && v !== null && typeof v !== "string" && typeof v !== "number")
    throw new FleetError("FR_VALIDATION", `${field} must be a duration such as "1h" or a number of seconds`);
  return parseDuration(v, field);
}

/** Reads an optional list field (JSON array or comma-separated string). */
export function optList(body: Record<string, unknown>, field: string): string[] {
  const v = body[field];
  if (v === undefined || v === null || v === "") return [];
  if (typeof v === "string")
    return v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === "string"))
    return v.map((s) => s.trim()).filter(Boolean);
  throw new FleetError("FR_VALIDATION", `${field} must be a list of strings or a comma-separated string`);
}
