/**
 * PEM (RFC 7468 textual encoding). The CRL label is `X509 CRL` (RFC 7468 section 6): OpenSSL refuses
 * the `CRL` label some libraries write.
 */
import { X509Certificate } from "node:crypto";
import { fail } from "../errors/index.js";

export type PemLabel =
  | "CERTIFICATE"
  | "X509 CRL"
  | "CERTIFICATE REQUEST"
  | "NEW CERTIFICATE REQUEST"
  | "PUBLIC KEY"
  | "PRIVATE KEY"
  | (string & {});

/** DER → PEM with 64-character lines and a trailing newline. */
export function toPem(der: Uint8Array, label: PemLabel): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/;

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/**
 * The first PEM block in `text` (text before it, such as `openssl x509 -text` output, is skipped).
 * With `label`, the block must carry one of the given labels.
 */
export function fromPem(text: string, label?: PemLabel | readonly PemLabel[]): PemBlock {
  const m = BLOCK.exec(text);
  if (!m) fail("FR_PEM_INVALID", "no -----BEGIN ...----- / -----END ...----- block was found");
  const [, begin = "", body = "", end = ""] = m;
  if (begin !== end) fail("FR_PEM_INVALID", `the block begins with "${begin}" but ends with "${end}"`);
  const wanted = label === undefined ? undefined : typeof label === "string" ? [label] : label;
  if (wanted && !wanted.includes(begin)) {
    fail(
      "FR_PEM_INVALID",
      `expected a PEM block labelled ${wanted.map((l) => `"${l}"`).join(" or ")}, got "${begin}"`,
    );
  }
  if (/^[A-Za-z-]+:/m.test(body)) fail("FR_PEM_INVALID", "encrypted or header-carrying PEM is not supported");
  const b64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0 || b64.length === 0) {
    fail("FR_PEM_INVALID", `the "${begin}" block does not hold valid base64`);
  }
  return { label: begin, der: Buffer.from(b64, "base64") };
}

/**
 * DER from either DER bytes or PEM text/bytes. Every structure read here is a SEQUENCE, so input that does
 * not start with the SEQUENCE tag is taken as PEM (and fails there with a clear message if it is not).
 */
export function derFrom(input: Uint8Array | string, label?: PemLabel | readonly PemLabel[]): Buffer {
  if (typeof input !== "string" && input[0] === 0x30)
    return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const text =
    typeof input === "string"
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString("latin1");
  return fromPem(text, label).der;
}

/** The CERTIFICATE blocks of a PEM file, each parsed or with why not, and the labels of its other blocks. */
export interface PemCertificates {
  readonly certificates: { line: number; cert?: X509Certificate; problem?: string }[];
  readonly others: string[];
  /** Line of a BEGIN CERTIFICATE with no END CERTIFICATE after it (a cut-off file). */
  readonly unterminated?: number;
}

/**
 * Every PEM block of a bundle (a CA file, a chain): CERTIFICATE blocks parsed one by one, so a block that
 * is not a certificate is found rather than skipped as OpenSSL would skip it.
 */
export function pemCertificates(text: string): PemCertificates {
  const certificates: PemCertificates["certificates"] = [];
  const others: string[] = [];
  const block = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  let end = 0;
  for (let m = block.exec(text); m; m = block.exec(text)) {
    end = block.lastIndex;
    const label = m[1] ?? "";
    if (label !== "CERTIFICATE") {
      others.push(label);
      continue;
    }
    const line = text.slice(0, m.index).split("\n").length;
    try {
      certificates.push({ line, cert: new X509Certificate(m[0]) });
    } catch (e) {
      certificates.push({ line, problem: (e as Error).message.split("\n")[0] ?? "" });
    }
  }
  const cut = text.indexOf("-----BEGIN CERTIFICATE-----", end);
  return cut < 0
    ? { certificates, others }
    : { certificates, others, unterminated: text.slice(0, cut).split("\n").length };
}
