import { constants, createHash, createPublicKey, hash, verify, type KeyObject } from "node:crypto";
import type { SignatureScheme } from "../keys/types.js";
import { jsonString } from "./json.js";
import type { CheckpointReason } from "./types.js";

/** Version tag written in the genesis line; bump it if the line or checkpoint format ever changes. */
export const AUDIT_FORMAT = "fleetroot-audit/1";

/** `prev` of the first line (seq 1): there is no previous line, so a fixed all-zero hash stands in. */
export const GENESIS_PREV = "0".repeat(64);

/** First line of the byte string a checkpoint signature covers; keeps these signatures from meaning anything else. */
export const CHECKPOINT_DOMAIN = "fleetroot-audit-checkpoint-v1";

/** hex SHA-256 of a line's exact bytes, without its trailing newline: the next line's `prev`. */
export function lineHash(line: string | Uint8Array): string {
  return hash("sha256", line, "hex");
}

/** hex SHA-256 of the SPKI DER; names the audit key in genesis and checkpoint lines. */
export function keyIdOf(spki: Uint8Array): string {
  return createHash("sha256").update(spki).digest("hex");
}

export interface CheckpointFields {
  seq: number;
  time: string;
  prev: string;
  count: number;
  reason: CheckpointReason;
  key_id: string;
  algorithm: SignatureScheme;
}

/**
 * The exact bytes a checkpoint signs: UTF-8 of the domain line, then one `name=value` line per field in this
 * fixed order, each ended by "\n". `prev` is the chain head (hash of the line before the checkpoint), which
 * commits to every earlier line. Values never contain "\n" (verify refuses checkpoints whose do).
 */
export function checkpointPayload(c: CheckpointFields): Uint8Array {
  const text =
    `${CHECKPOINT_DOMAIN}\n` +
    `seq=${c.seq}\ntime=${c.time}\nprev=${c.prev}\ncount=${c.count}\n` +
    `reason=${c.reason}\nkey_id=${c.key_id}\nalgorithm=${c.algorithm}\n`;
  return Buffer.from(text, "utf8");
}

/**
 * Builds one chained line without re-serializing the entry: `fields` is the entry's JSON object text
 * without its opening "{" (it holds at least "type", so the chain fields go in front of it).
 */
export function chainLine(seq: number, time: string, prev: string, fields: string): string {
  return `{"seq":${seq},"time":${jsonString(time)},"prev":"${prev}",${fields}`;
}

const schemes: Readonly<
  Record<SignatureScheme, { hash: string | null; padding?: number; saltLength?: number }>
> = {
  "ecdsa-sha256": { hash: "sha256" },
  "ecdsa-sha384": { hash: "sha384" },
  ed25519: { hash: null },
  "rsa-pkcs1-sha256": { hash: "sha256", padding: constants.RSA_PKCS1_PADDING },
  "rsa-pkcs1-sha384": { hash: "sha384", padding: constants.RSA_PKCS1_PADDING },
  "rsa-pss-sha256": { hash: "sha256", padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
  "rsa-pss-sha384": { hash: "sha384", padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
};

export function isSignatureScheme(s: unknown): s is SignatureScheme {
  return typeof s === "string" && Object.hasOwn(schemes, s);
}

export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
}

/** Checks a checkpoint signature (ECDSA in DER, as Signer returns it). False on any mismatch or bad input. */
export function verifySignature(
  key: KeyObject,
  scheme: SignatureScheme,
  data: Uint8Array,
  sig: Uint8Array,
): boolean {
  const s = schemes[scheme];
  try {
    return verify(
      s.hash,
      data,
      {
        key,
        dsaEncoding: "der",
        ...(s.padding !== undefined ? { padding: s.padding } : {}),
        ...(s.saltLength !== undefined ? { saltLength: s.saltLength } : {}),
      },
      sig,
    );
  } catch {
    return false;
  }
}
