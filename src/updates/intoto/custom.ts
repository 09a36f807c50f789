import type { DsseEnvelope } from "./dsse.js";
import type { Layout, Link, Metablock } from "./types.js";

/**
 * What a target's custom metadata carries for in-toto (as CNAB's security spec does): the signed layout,
 * the links by their in-toto file names, and attestations. TUF's signature over the targets metadata
 * then covers them too.
 */
export interface IntotoCustom {
  "in-toto": { layout: Metablock<Layout>; links: Record<string, Metablock<Link>> };
  "in-toto-attestations"?: DsseEnvelope[];
}

export function intotoCustom(
  layout: Metablock<Layout>,
  links: Record<string, Metablock<Link>>,
  attestations?: DsseEnvelope[],
): IntotoCustom {
  return {
    "in-toto": { layout, links },
    ...(attestations?.length ? { "in-toto-attestations": attestations } : {}),
  };
}
