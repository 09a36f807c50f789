import { pemCertificates } from "../crypto/index.js";
import { FleetError } from "../errors/index.js";

/**
 * tls.client_ca_file must hold certificates only, each one valid: OpenSSL skips a block it cannot decode
 * and reads a key-only file as an empty bundle, so mutual TLS would start and then refuse every client.
 */
export function checkClientCaBundle(file: string, pem: Buffer): void {
  const { certificates, others, unterminated } = pemCertificates(pem.toString("latin1"));
  const bad = certificates.find((c) => c.cert === undefined);
  const none = certificates.length === 0 || certificates.every((c) => c.cert === undefined);
  const head = `tls.client_ca_file: ${file} ${none ? "holds no valid certificate" : "holds a broken certificate"}`;
  if (bad) {
    throw invalid(`${head}: ${unparsed(bad)}`);
  }
  if (unterminated !== undefined) {
    throw invalid(`${head}: the CERTIFICATE block at line ${unterminated} has no END line (a cut-off file?)`);
  }
  if (none) {
    const found = others.length ? `only ${[...new Set(others)].join(", ")} blocks` : "no PEM block at all";
    throw invalid(`${head}: it has ${found}; it must be PEM CERTIFICATE blocks of the CAs that sign clients`);
  }
}

/**
 * Every certificate in tls.cert_file must be valid at `now`: clients check the dates (RFC 5280 6.1.3 (a)(2)),
 * so an expired or not yet valid certificate would start a server that every client then refuses.
 */
export function checkServerCertificateDates(file: string, pem: Buffer, now: Date): void {
  const { certificates } = pemCertificates(pem.toString("latin1"));
  certificates.forEach(({ cert, line, problem }, i) => {
    const which = i === 0 ? "the server certificate" : `certificate ${i + 1} of its chain`;
    if (!cert) throw invalid(`tls.cert_file: ${file}: ${unparsed({ line, problem })}`);
    const subject = cert.subject.split("\n").join(", ");
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (now < from) {
      throw invalid(
        `tls.cert_file: ${file}: ${which} (${subject}) is not valid before ${isoSeconds(from)}; ` +
          "wait until then or check the clock, or use a certificate valid now",
      );
    }
    if (now > to) {
      throw invalid(
        `tls.cert_file: ${file}: ${which} (${subject}) expired on ${isoSeconds(to)}; ` +
          "renew it and point tls.cert_file at the new one",
      );
    }
  });
}

function unparsed(c: { line: number; problem?: string | undefined }): string {
  return `the CERTIFICATE block at line ${c.line} is not an X.509 certificate (${c.problem ?? "?"})`;
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function invalid(detail: string): FleetError {
  return new FleetError("FR_CONFIG_INVALID", detail);
}
