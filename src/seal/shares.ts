import { fail } from "../errors/index.js";

/** Vault's limits on key shares (sys/init). */
export function validateShares(req: { secret_shares?: number; secret_threshold?: number }): {
  n: number;
  t: number;
} {
  const n = req.secret_shares;
  const t = req.secret_threshold;
  if (n === undefined || t === undefined) {
    fail(
      "FR_VALIDATION",
      "secret_shares and secret_threshold are required for the shamir seal (e.g. 5 and 3)",
    );
  }
  if (!Number.isInteger(n) || n < 1 || n > 255)
    fail("FR_VALIDATION", "secret_shares must be an integer from 1 to 255");
  if (!Number.isInteger(t) || t < 1)
    fail("FR_VALIDATION", "secret_threshold must be an integer of at least 1");
  if (t > n) fail("FR_VALIDATION", "secret_threshold cannot be larger than secret_shares");
  if (n > 1 && t < 2)
    fail("FR_VALIDATION", "secret_threshold must be at least 2 when there is more than one share");
  return { n, t };
}

/** Decodes an unseal key given as hex or base64 (as Vault accepts both); it must be `length` bytes. */
export function parseShare(input: string, length: number): Buffer {
  const s = input.trim();
  let b: Buffer | undefined;
  if (s.length === length * 2 && /^[0-9a-fA-F]+$/.test(s)) b = Buffer.from(s, "hex");
  else if (s.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(s)) b = Buffer.from(s, "base64");
  if (!b || b.length !== length) {
    b?.fill(0);
    fail(
      "FR_UNSEAL_SHARE_INVALID",
      `an unseal key is ${length} bytes, given as ${length * 2} hex characters or as base64`,
    );
  }
  return b;
}
