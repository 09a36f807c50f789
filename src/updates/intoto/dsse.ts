import { fail } from "../../errors/index.js";
import { verifyTufSignature, type TufKey, type TufSigner } from "../keys.js";

export const intotoPayloadType = "application/vnd.in-toto+json";

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

/** in-toto Statement v1: what was made (subjects with digests) and a typed predicate about it. */
export interface Statement {
  _type: "https://in-toto.io/Statement/v1";
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

export function provenanceStatement(
  subjects: Array<{ name: string; sha256: string }>,
  predicate: Record<string, unknown>,
  predicateType = "https://slsa.dev/provenance/v1",
): Statement {
  return {
    _type: "https://in-toto.io/Statement/v1",
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType,
    predicate,
  };
}

export async function signStatement(
  statement: Statement,
  signers: readonly TufSigner[],
): Promise<DsseEnvelope> {
  const body = Buffer.from(JSON.stringify(statement), "utf8");
  const msg = pae(intotoPayloadType, body);
  const signatures = [];
  for (const s of signers)
    signatures.push({ keyid: s.keyid, sig: Buffer.from(await s.sign(msg), "hex").toString("base64") });
  return { payloadType: intotoPayloadType, payload: body.toString("base64"), signatures };
}

/** Verifies a DSSE envelope under trusted keys (by keyid) and returns its Statement. */
export function verifyStatement(
  env: DsseEnvelope,
  keys: Readonly<Record<string, TufKey>>,
  threshold = 1,
): Statement {
  if (
    env?.payloadType !== intotoPayloadType ||
    typeof env.payload !== "string" ||
    !Array.isArray(env.signatures)
  ) {
    return fail("FR_UPDATES_INTOTO", `not a DSSE envelope with payloadType ${intotoPayloadType}`);
  }
  const body = Buffer.from(env.payload, "base64");
  const msg = pae(env.payloadType, body);
  const ok = new Set<string>();
  for (const s of env.signatures) {
    const key = keys[s.keyid];
    if (key && verifyTufSignature(key, msg, Buffer.from(s.sig, "base64").toString("hex"))) ok.add(s.keyid);
  }
  if (ok.size < threshold)
    fail("FR_UPDATES_INTOTO", `the attestation has ${ok.size} valid signature(s), ${threshold} needed`);
  let st: Statement;
  try {
    st = JSON.parse(body.toString("utf8")) as Statement;
  } catch {
    return fail("FR_UPDATES_INTOTO", "the attestation payload is not JSON");
  }
  if (st._type !== "https://in-toto.io/Statement/v1" || !Array.isArray(st.subject)) {
    fail("FR_UPDATES_INTOTO", "the attestation payload is not an in-toto Statement v1");
  }
  return st;
}
