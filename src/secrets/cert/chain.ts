import { X509Certificate } from "node:crypto";

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EKU = "2.5.29.37.0";
const MAX_CHAIN = 8;

/** Parses every certificate in a PEM bundle. */
export function parseBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * Path validation for a client certificate (RFC 5280 6.1, the parts a login needs): every link's
 * signature, validity at `now`, CA flag on issuers, and a trust anchor taken only from `anchors`.
 * `intermediates` are what the client sent; they are never trusted on their own. A leaf pinned in
 * `anchors` itself is accepted as Vault's cert auth does. Returns the chain from leaf to anchor, or a reason.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: Date,
): { ok: true; chain: X509Certificate[] } | { ok: false; reason: string } {
  const chain: X509Certificate[] = [leaf];
  let cur = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (!validAt(cur, now))
      return { ok: false, reason: `certificate "${cur.subject.replace(/\n/g, ", ")}" is not valid now` };
    if (anchors.some((a) => a.fingerprint256 === cur.fingerprint256)) return { ok: true, chain };
    const anchor = anchors.find((a) => a.ca && cur.checkIssued(a) && cur.verify(a.publicKey));
    if (anchor) {
      if (!validAt(anchor, now)) return { ok: false, reason: "the trusted CA certificate is not valid now" };
      chain.push(anchor);
      return { ok: true, chain };
    }
    const next = intermediates.find(
      (i) => i.ca && i.fingerprint256 !== cur.fingerprint256 && cur.checkIssued(i) && cur.verify(i.publicKey),
    );
    if (!next) return { ok: false, reason: "the certificate does not chain to this role's CA" };
    chain.push(next);
    cur = next;
  }
  return { ok: false, reason: `the chain is longer than ${MAX_CHAIN}` };
}

function validAt(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

/** A client certificate with an EKU extension must allow clientAuth (RFC 5280 4.2.1.12). */
export function allowsClientAuth(c: X509Certificate): boolean {
  const eku = c.keyUsage;
  return !eku || eku.length === 0 || eku.includes(CLIENT_AUTH) || eku.includes(ANY_EKU);
}

export interface CertNames {
  commonName: string;
  organizationalUnits: string[];
  dns: string[];
  uri: string[];
  email: string[];
}

/** The names a role's rules match on: subject CN and OUs, DNS/URI/email SANs. */
export function namesOf(c: X509Certificate): CertNames {
  const attrs = c.subject.split("\n");
  const get = (k: string) => attrs.filter((a) => a.startsWith(k + "=")).map((a) => a.slice(k.length + 1));
  const san = (c.subjectAltName ?? "").split(/,\s*/).filter(Boolean);
  const sanOf = (prefix: string) =>
    san.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
  return {
    commonName: get("CN")[0] ?? "",
    organizationalUnits: get("OU"),
    dns: sanOf("DNS:"),
    uri: sanOf("URI:"),
    email: sanOf("email:"),
  };
}

/** Vault's glob: `*` matches any run of characters; everything else literally. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp("^" + pattern.split("*").map(escapeRe).join(".*") + "$");
  return re.test(value);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
