import type { FastifyReply, FastifyRequest } from "fastify";

/** Vault's capabilities, checked against ACL policies. */
export type Capability = "create" | "read" | "update" | "patch" | "delete" | "list" | "sudo" | "deny";

/** What an authenticated request carries: the token's entry, never the token itself. */
export interface RequestAuth {
  /** sha256 hex of the token, the key it is stored under (never logged). */
  readonly tokenHash: string;
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly displayName: string;
  readonly entityMeta: Readonly<Record<string, string>>;
  /** true for a token holding the root policy. */
  readonly root: boolean;
}

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "LIST" | "HEAD";

export interface RouteContext {
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  /** Request ID (uuid), also in the audit entries. */
  readonly requestId: string;
  /** The method after Vault's mapping (GET ?list=true → LIST). */
  readonly method: HttpMethod;
  /** The API path without the /v1/ prefix, e.g. "secret/data/app/db". */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** The parsed JSON body (an object), or {} when there is none. */
  readonly body: Record<string, unknown>;
  /** The body as bytes, for routes that declare rawBodyTypes (e.g. application/ocsp-request). */
  readonly rawBody: Buffer | undefined;
  /** The raw token string from X-Vault-Token / Authorization: Bearer, when present. */
  readonly token: string | undefined;
  /** Set when the route required a token and it checked out. */
  readonly auth: RequestAuth | undefined;
  /**
   * Whether the token certainly holds `capability` on the policy path for this request's parameters,
   * known now from the cached policies (false when it does not or when that is not known without a lookup).
   * For a route's capability function: when every answer it could give is granted, it need not find out
   * which one applies.
   */
  grantedNow(capability: Capability): boolean;
  /**
   * Something the reply must wait for (and fail with, if it rejects): e.g. the durability of a commit,
   * waited for together with the response's audit entry rather than before it.
   */
  beforeReply(p: Promise<unknown>): void;
  /** Extra fields for this request's audit entries (e.g. what was issued); strings in it are HMAC'd. */
  auditData(fields: Record<string, unknown>): void;
  /**
   * Writes a security event to the audit log now (e.g. "ca.sign", "token.revoke"); `fields` stay plain,
   * strings in `data` are HMAC'd. Rejects — and so fails the request — when the entry cannot be written.
   */
  auditEvent(
    name: string,
    fields?: Record<string, string | number | boolean>,
    data?: Record<string, unknown>,
  ): Promise<void>;
}

/**
 * A handler's answer. `data`/`auth`/`warnings` produce Vault's envelope
 * ({request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth});
 * `raw` is sent as-is (sys/health, sys/seal-status, CRLs, OCSP); `status` 204 sends no body.
 */
export type RouteResult =
  | {
      kind: "envelope";
      status?: number;
      data?: unknown;
      auth?: unknown;
      warnings?: string[];
      leaseDuration?: number;
      renewable?: boolean;
      /** Set when the response was wrapped (X-Vault-Wrap-TTL): data and auth are then empty. */
      wrapInfo?: unknown;
    }
  | { kind: "raw"; status?: number; body: unknown; contentType?: string; headers?: Record<string, string> }
  | { kind: "empty"; status?: 204 };

export interface RouteSpec {
  readonly method: HttpMethod | readonly HttpMethod[];
  /** Fastify URL pattern including /v1, e.g. "/v1/auth/token/lookup/:accessor" or "/v1/secret/*". */
  readonly url: string;
  /**
   * "token": a valid token is required and the ACL must grant `capability` on `policyPath`.
   * "none": no token needed (sys/health, sys/unseal, login endpoints, OCSP, CRL); still audited.
   */
  readonly auth: "token" | "none";
  /** Defaults from the method: GET→read, LIST→list, DELETE→delete, PATCH→patch, POST/PUT→update. */
  readonly capability?: Capability | ((ctx: RouteContext) => Capability | Promise<Capability>);
  /** The ACL path checked; defaults to ctx.path. */
  readonly policyPath?: (ctx: RouteContext) => string;
  /** Served while sealed (sys/health, seal-status, init, unseal). Everything else answers 503. */
  readonly whileSealed?: boolean;
  /** Body fields that must never appear in the audit log even as HMACs (e.g. unseal keys). */
  readonly redact?: readonly string[];
  /**
   * A POST/PUT that changes nothing (an OCSP query, a lookup): like a GET, its one audit entry (request and
   * response together) is written after the handler and before the reply.
   */
  readonly readOnly?: boolean;
  /** Per-client rate limit bucket (login and unseal endpoints). */
  readonly rateLimit?: "login" | "unseal";
  /** Raw request bodies of these content types reach the handler as a Buffer in ctx.rawBody (OCSP). */
  readonly rawBodyTypes?: readonly string[];
  readonly handler: (ctx: RouteContext) => Promise<RouteResult>;
}

/** What a module exposes to the server: its routes. */
export type RouteModule = readonly RouteSpec[];

export const envelope = (
  data: unknown,
  extra: Omit<Extract<RouteResult, { kind: "envelope" }>, "kind" | "data"> = {},
): RouteResult => ({
  kind: "envelope",
  data,
  ...extra,
});
export const raw = (body: unknown, status = 200, contentType?: string): RouteResult =>
  contentType ? { kind: "raw", body, status, contentType } : { kind: "raw", body, status };
export const empty = (): RouteResult => ({ kind: "empty", status: 204 });
