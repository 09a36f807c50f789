import { canonicalJson } from "../canonical-json.js";
import type { TufSigner } from "../keys.js";
import type { Metablock } from "./types.js";

/** Adds each signer's signature over the canonical JSON of `signed` (in-toto 1.x Metablock). */
export async function addSignaturesTo<T>(
  mb: Metablock<T>,
  signers: readonly TufSigner[],
): Promise<Metablock<T>> {
  const bytes = canonicalJson(mb.signed);
  const sigs = new Map(mb.signatures.map((s) => [s.keyid, s]));
  for (const s of signers) sigs.set(s.keyid, { keyid: s.keyid, sig: await s.sign(bytes) });
  return { signed: mb.signed, signatures: [...sigs.values()] };
}
