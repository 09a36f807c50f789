/**
 * The agent's HTTP(S) calls to the enrollment API: JSON in and out, the server's CA pinned by file,
 * and for renewal the device's current certificate and key as the TLS client identity.
 */
import http from "node:http";
import https from "node:https";

export interface AgentHttpOptions {
  readonly server: string;
  readonly ca?: string | Buffer | undefined;
  readonly clientCert?: string | undefined;
  readonly clientKey?: string | undefined;
  readonly timeoutMs?: number;
}

/** The server answered with an error; `retryable` for 408/429/5xx. */
export class ServerRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "ServerRefusal";
  }
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The server could not be reached (connection refused, timeout, TLS failure): always retryable. */
export class Unreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Unreachable";
  }
}

/** The JSON body of an answer, or the ServerRefusal an error status stands for. */
export function answerOf(status: number, text: string, apiPath: string): Record<string, unknown> {
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text || "{}") as Record<string, unknown>;
  } catch {
    /* an error page that is not JSON: reported by status below */
  }
  if (status < 400) return json;
  const errs = Array.isArray(json.errors) ? (json.errors as string[]).join("; ") : `HTTP ${status}`;
  throw new ServerRefusal(
    status,
    typeof json.code === "string" ? json.code : undefined,
    `${apiPath}: ${errs}`,
  );
}

export async function postJson(
  opts: AgentHttpOptions,
  apiPath: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const url = new URL(`/v1/${apiPath}`, opts.server);
  const payload = Buffer.from(JSON.stringify(body));
  const tls = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(payload.length) },
        timeout: opts.timeoutMs ?? 15_000,
        ...(tls
          ? {
              ...(opts.ca ? { ca: opts.ca } : {}),
              ...(opts.clientCert ? { cert: opts.clientCert } : {}),
              ...(opts.clientKey ? { key: opts.clientKey } : {}),
              agent: false,
            }
          : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e) => reject(new Unreachable(`${url.origin}: ${e.message}`)));
        res.on("end", () => {
          try {
            resolve(answerOf(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), apiPath));
          } catch (e) {
            reject(e as Error);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(new Unreachable(`cannot reach ${url.origin}: ${e.code ?? e.message}`)),
    );
    req.end(payload);
  });
}

/**
 * GET of a public document (no token) with the server's CA pinned: the status and the body, refused once
 * the body passes `maxBytes` (`what` names it in that error). Connection failures are Unreachable.
 */
export function getBounded(
  url: URL,
  ca: string | Buffer | undefined,
  maxBytes: number,
  what: string,
): Promise<{ status: number; body: Buffer }> {
  const tls = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).get(
      url,
      { timeout: 15_000, agent: false, ...(tls && ca ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size <= maxBytes) return void chunks.push(c);
          req.destroy();
          reject(new Error(`${url.href}: ${what} is larger than ${maxBytes} bytes`));
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", (e) => reject(new Unreachable(`${url.origin}: ${e.message}`)));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(new Unreachable(`cannot reach ${url.origin}: ${e.code ?? e.message}`)),
    );
  });
}

/** `data` of a Vault-style envelope. */
export const dataOf = (r: Record<string, unknown>): Record<string, unknown> =>
  (r.data ?? {}) as Record<string, unknown>;
