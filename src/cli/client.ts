import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { CliError } from "./output.js";

export interface ClientOptions {
  address: string;
  token?: string | undefined;
  caCert?: string | undefined;
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): Record<string, unknown>;
}

/** A small HTTP client for the Fleetroot API (Vault-style JSON, X-Vault-Token). */
export class ApiClient {
  constructor(private readonly opts: ClientOptions) {}

  get address(): string {
    return this.opts.address;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    extra: { headers?: Record<string, string>; raw?: Buffer; allowStatus?: number[] } = {},
  ): Promise<ApiResponse> {
    let url: URL;
    try {
      url = new URL(`/v1/${path.replace(/^\/+/, "")}`, this.opts.address);
      // Vault's LIST verb travels as GET ?list=true, which every HTTP stack carries.
      if (method === "LIST") {
        method = "GET";
        url.searchParams.set("list", "true");
      }
    } catch {
      throw new CliError(
        `the server address "${this.opts.address}" is not a URL; set FLEETROOT_ADDR or --address`,
      );
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
      if (this.opts.caCert) agentOpts.ca = readOption(this.opts.caCert, "--ca-cert (FLEETROOT_CACERT)");
      if (this.opts.clientCert) agentOpts.cert = readOption(this.opts.clientCert, "the client certificate");
      if (this.opts.clientKey) agentOpts.key = readOption(this.opts.clientKey, "the client key");
    }
    const res = await new Promise<ApiResponse>((resolve, reject) => {
      const req = (tls ? https : http).request(
        url,
        { method, headers, timeout: this.opts.timeoutMs ?? 30_000, ...agentOpts },
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
          r.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", (e: NodeJS.ErrnoException) =>
        reject(
          new CliError(
            `cannot reach the server at ${this.opts.address}: ${e.code ?? e.message}; is it running? (FLEETROOT_ADDR)`,
          ),
        ),
      );
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
