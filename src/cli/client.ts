import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { pemCertificates } from "../crypto/index.js";
import { CliError } from "./output.js";

export interface ClientOptions {
  address: string;
  token?: string | undefined;
  caCert?: string | undefined;
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  timeoutMs?: number;
  /** Where the address, token and CA file came from ("--address", "FLEETROOT_ADDR"), for error messages. */
  names?: { address?: string; token?: string; caCert?: string };
}

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): Record<string, unknown>;
}

/** A small HTTP client for the Fleetroot API (Vault-style JSON, X-Vault-Token). */
export class ApiClient {
  private readonly base: URL;
  private readonly names: Required<NonNullable<ClientOptions["names"]>>;
  private ca: Buffer | undefined;

  /** Checks the address and the token up front: both are usage errors (exit 2), not connection failures. */
  constructor(private readonly opts: ClientOptions) {
    this.names = {
      address: opts.names?.address ?? "FLEETROOT_ADDR (--address)",
      token: opts.names?.token ?? "FLEETROOT_TOKEN (--token)",
      caCert: opts.names?.caCert ?? "--ca-cert (FLEETROOT_CACERT)",
    };
    this.base = serverUrl(opts.address, this.names.address);
    if (opts.token !== undefined) checkToken(opts.token, this.names.token);
  }

  get address(): string {
    return this.opts.address;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    extra: { headers?: Record<string, string>; raw?: Buffer; allowStatus?: number[] } = {},
  ): Promise<ApiResponse> {
    const url = new URL(`/v1/${path.replace(/^\/+/, "")}`, this.base);
    // Vault's LIST verb travels as GET ?list=true, which every HTTP stack carries.
    if (method === "LIST") {
      method = "GET";
      url.searchParams.set("list", "true");
    }
    const payload = extra.raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    const headers: Record<string, string> = { ...extra.headers };
    if (this.opts.token) headers["x-vault-token"] = this.opts.token;
    if (payload) {
      headers["content-type"] ??= "application/json";
      headers["content-length"] = String(payload.length);
    }
    const tls = url.protocol === "https:";
    const agentOpts: https.RequestOptions = {};
    if (tls) {
      if (this.opts.caCert) agentOpts.ca = this.caBundle(this.opts.caCert);
      if (this.opts.clientCert) agentOpts.cert = readOption(this.opts.clientCert, "the client certificate");
      if (this.opts.clientKey) agentOpts.key = readOption(this.opts.clientKey, "the client key");
    }
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    const res = await new Promise<ApiResponse>((resolve, reject) => {
      let timedOut = false;
      const failed = (e: NodeJS.ErrnoException): void =>
        reject(new CliError(timedOut ? this.timeoutMessage(timeoutMs) : this.connectionMessage(e, tls)));
      const req = (tls ? https : http).request(
        url,
        { method, headers, timeout: timeoutMs, ...agentOpts },
        (r) => {
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () => {
            const buf = Buffer.concat(chunks);
            resolve({
              status: r.statusCode ?? 0,
              headers: r.headers,
              body: buf,
              json: () => {
                try {
                  return buf.length ? (JSON.parse(buf.toString("utf8")) as Record<string, unknown>) : {};
                } catch {
                  throw new CliError(
                    `the server at ${this.opts.address} answered ${r.statusCode} with a body that is not JSON`,
                  );
                }
              },
            });
          });
          r.on("error", (e: NodeJS.ErrnoException) =>
            reject(
              new CliError(
                `the answer from the server at ${this.opts.address} broke off: ${e.code ?? e.message}`,
              ),
            ),
          );
        },
      );
      req.on("timeout", () => {
        timedOut = true;
        req.destroy();
      });
      req.on("error", failed);
      if (payload) req.write(payload);
      req.end();
    });
    if (res.status >= 400 && !extra.allowStatus?.includes(res.status)) {
      let msg = `the server answered ${res.status}`;
      try {
        const j = res.json();
        const errs = Array.isArray(j.errors) ? (j.errors as string[]) : [];
        if (errs.length) msg = `${errs.join("; ")}${j.code ? ` (${String(j.code)})` : ""}`;
      } catch {
        /* keep the status line */
      }
      throw new CliError(`${method} ${path}: ${msg}`);
    }
    return res;
  }

  async json(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.call(method, path, body);
    return res.status === 204 ? {} : res.json();
  }

  /** The CA file, read once; a file without a certificate would be ignored by Node, so it is an error. */
  private caBundle(file: string): Buffer {
    this.ca ??= readCaBundle(file, this.names.caCert);
    return this.ca;
  }

  private timeoutMessage(ms: number): string {
    return `the server at ${this.opts.address} did not answer within ${Math.round(ms / 1000)} s`;
  }

  /**
   * One line for a failed connection that says what to change. Only a refused connection or an unknown host
   * asks "is it running?": a reset, a TLS mismatch or an untrusted certificate come from a running server.
   */
  private connectionMessage(
    e: NodeJS.ErrnoException & { cert?: { subjectaltname?: string } },
    tls: boolean,
  ): string {
    const at = `the server at ${this.opts.address}`;
    const code = e.code ?? "";
    const addr = this.names.address;
    if (UNREACHABLE.has(code)) return `cannot reach ${at}: ${code}; is it running? (${addr})`;
    if (code === "ECONNRESET" && !tls) {
      return `${at} closed the connection without answering (ECONNRESET); if it speaks TLS, use https:// in ${addr}`;
    }
    if (!tls) return `cannot reach ${at}: ${code || oneLine(e.message)}`;
    if (NOT_TLS.test(e.message) || code === "ERR_SSL_WRONG_VERSION_NUMBER") {
      return `${at} does not speak TLS on that port (${sslReason(e)}); use http:// in ${addr}`;
    }
    if (UNTRUSTED.has(code)) {
      return this.opts.caCert
        ? `the TLS certificate of ${at} is not signed by a CA in ${this.names.caCert} ${this.opts.caCert} (${code})`
        : `the TLS certificate of ${at} is not trusted (${code}); pass --ca-cert FILE or set FLEETROOT_CACERT to the CA certificate that signed it`;
    }
    if (code === "CERT_HAS_EXPIRED") {
      return `the TLS certificate of ${at} has expired (CERT_HAS_EXPIRED); renew it on the server`;
    }
    if (code === "CERT_NOT_YET_VALID") {
      return `the TLS certificate of ${at} is not valid yet (CERT_NOT_YET_VALID); check the clocks here and on the server`;
    }
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      const names = e.cert?.subjectaltname;
      return (
        `the host name ${this.base.hostname} in ${addr} is not in the TLS certificate of ${at} (${code}); ` +
        (names ? `use a name it holds: ${names}` : "use a name the certificate holds")
      );
    }
    if (code === "ECONNRESET") return `${at} closed the connection without answering (ECONNRESET)`;
    if (code === "EPROTO" || code.startsWith("ERR_SSL_")) {
      return `the TLS handshake with ${at} failed: ${sslReason(e)}`;
    }
    return `cannot reach ${at}: ${code || oneLine(e.message)}`;
  }
}

/** Connection failures where nothing answered: the address is wrong or the server is down. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

/** OpenSSL verification results that mean "no trusted CA signed this chain". */
const UNTRUSTED = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_UNTRUSTED",
]);

/** What OpenSSL reports when the first bytes back are not a TLS record (a plain HTTP answer). */
const NOT_TLS = /wrong version number|packet length too long|http request/i;

/** The reason part of an OpenSSL error ("…:SSL routines:ssl3_get_record:wrong version number:…"), else its code. */
function sslReason(e: NodeJS.ErrnoException): string {
  const m = /SSL routines:[^:]*:([^:\n]+)/.exec(e.message);
  return m?.[1] ?? e.code ?? oneLine(e.message);
}

function oneLine(s: string): string {
  return s.split(/\r?\n/, 1)[0]?.trim() ?? "";
}

/** The server address as a URL; anything but http:// or https:// is a usage error naming where it came from. */
function serverUrl(address: string, from: string): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new CliError(`${from} "${address}" is not a URL; it must be an http:// or https:// URL`, 2);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`${from} "${address}" must be an http:// or https:// URL, not ${url.protocol}//`, 2);
  }
  return url;
}

/** The token travels in a header: a line break or a control character cannot (and the token is not echoed). */
function checkToken(token: string, from: string): void {
  try {
    http.validateHeaderValue("x-vault-token", token);
  } catch {
    throw new CliError(
      `the token contains characters an HTTP header cannot carry (a line break or control character); check ${from}`,
      2,
    );
  }
}

/** Reads a PEM CA bundle and checks it holds at least one certificate, and that each one parses. */
function readCaBundle(file: string, what: string): Buffer {
  const data = readOption(file, what);
  const text = data.toString("latin1");
  const { certificates } = pemCertificates(text);
  if (certificates.length === 0)
    throw new CliError(`${what} ${file} holds no certificate: ${notACertificate(data, text)}`);
  if (certificates.some((c) => c.cert === undefined)) {
    throw new CliError(
      `${what} ${file} holds a certificate that does not parse; give the CA certificate in PEM`,
    );
  }
  return data;
}

/** Why a file with no PEM certificate block is not a CA bundle, as a hint to fix it. */
function notACertificate(data: Buffer, text: string): string {
  if (data.length === 0 || text.trim() === "") return "the file is empty";
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
    return "it holds a private key; give the CA certificate";
  return parses(data)
    ? "it is DER; convert it with openssl x509 -inform der -out ca.pem"
    : "give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)";
}

function parses(cert: string | Buffer): boolean {
  try {
    return new X509Certificate(cert).raw.length > 0;
  } catch {
    return false;
  }
}

function readOption(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}
