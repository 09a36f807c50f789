/**
 * Builds a PKCS#10 request (RFC 2986 4.1) for a CA key: the server's intermediate CSR in the offline-root
 * ceremony. No attributes are requested; the root decides the profile when it signs.
 */
import {
  type NameSpec,
  bitString,
  encode,
  encodeName,
  implicitConstructed,
  integer,
  seq,
  signatureAlgorithm,
} from "../crypto/index.js";
import type { Signer } from "../keys/index.js";

export async function buildCsr(subject: NameSpec, signer: Signer): Promise<Buffer> {
  const alg = signatureAlgorithm(signer);
  const info = encode(seq(integer(0), encodeName(subject), signer.publicKey, implicitConstructed(0, [])));
  const sig = await signer.sign(info, alg.scheme);
  return encode(seq(info, alg.der, bitString(sig)));
}
