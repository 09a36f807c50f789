import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import type { AuditEntry } from "../audit/index.js";
import { FleetError, toFleetError } from "../errors/index.js";
import { parseDuration } from "../util/duration.js";
import { UuidSource } from "../util/uuid-source.js";
import type { Clock } from "../util/clock.js";
import { envelopeJson } from "./envelope.js";
import { listMethodHandler } from "./list-method.js";
import { Metrics } from "./metrics.js";
import { RateLimiter } from "./rate-limit.js";
import type { Capability, HttpMethod, RequestAuth, RouteContext, RouteResult, RouteSpec } from "./types.js";

/** What the request pipeline needs from the rest of the server; main.ts wires the real modules in. */
export interface AppDeps {
  readonly clock: Clock;
  readonly routes: readonly RouteSpec[];
  readonly isSealed: () => boolean;
  readonly authorizer: {
    authenticate(token: string): Promise<RequestAuth>;
    /** `params`: the request's parameters (body, or query for reads) for allowed/denied/required_parameters. */
    allowed(
      auth: RequestAuth,
      path: string,
      capability: Capability,
      params?: Record<string, unknown>,
    ): Promise<boolean>;
    /** authenticate() without waiting, for a token checked recently; undefined: call authenticate(). */
    cachedAuth(token: string): RequestAuth | undefined;
    /** allowed() without waiting, when the ACL is at hand; undefined: call allowed(). */
    allowedNow(
      auth: RequestAuth,
      path: string,
      capability: Capability,
      params?: Record<string, unknown>,
    ): boolean | undefined;
  };
  readonly audit: { log(entry: AuditRecord, durable?: boolean): Promise<void> };
  /** Whether the one entry of a request that changes nothing must be synced before the reply (audit.sync_reads). */
  readonly syncReads?: boolean;
  readonly limits: { maxBodyBytes: number; unsealPerMinute: number; loginPerMinute: number };
  readonly metrics?: Metrics;
  /** Fastify options for TLS (https) and logging; main.ts sets them. */
  readonly fastify?: FastifyServerOptions & { https?: unknown };
  /**
   * Response wrapping (X-Vault-Wrap-TTL): stores the envelope under a new single-use wrapping token and
   * returns Vault's wrap_info. Without it, a wrap request is refused.
   */
  readonly wrap?: (
    ctx: RouteContext,
    result: Extract<RouteResult, { kind: "envelope" }>,
    ttlSeconds: number,
  ) => Promise<unknown>;
  /** Extra gauges for /metrics (sealed state, …). */
  readonly gauges?: () => Record<string, number>;
  /**
   * The server's log: a request that fails with a 5xx status (other than "sealed") is written here with
   * its request id and the underlying cause, which the client and the audit log never see.
   */
  readonly log?: (line: string) => void;
}

/** The shape of an audit entry the pipeline writes (src/audit HMACs the sensitive parts). */
export type AuditRecord = AuditEntry;

const defaultCapability: Record<HttpMethod, Capability> = {
  GET: "read",
  HEAD: "read",
  LIST: "list",
  DELETE: "delete",
  PATCH: "patch",
  POST: "update",
  PUT: "update",
};

/**
 * Builds the Fastify app without listening (tests use inject()). Every route goes through one pipeline:
 * seal check → rate limit → token + ACL → audit request entry → handler → audit response entry → reply.
 * A request whose audit entry cannot be written fails (fail closed).
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const metrics = deps.metrics ?? new Metrics();
  const syncReads = deps.syncReads ?? false;
  const requestIds = new UuidSource();
  const self: { app?: FastifyInstance } = {};
  const app = Fastify({
    clientErrorHandler: listMethodHandler(() => self.app),
    bodyLimit: deps.limits.maxBodyBytes,
    // Names the API accepts are longer than Fastify's default of 100 (policy names: 128): a longer
    // parameter would miss its route and land in the secrets catch-all.
    routerOptions: { maxParamLength: 1024 },
    // A malformed URL (bad percent-encoding) gets the same JSON error body as every other failure.
    frameworkErrors: (
      error: Error & { code?: string; statusCode?: number },
      _req: FastifyRequest,
      reply: FastifyReply,
    ) => sendError(reply, fastifyErrorToFleet(error)),
    logger: false,
    return503OnClosing: true,
    ...(deps.fastify ?? {}),
  } as FastifyServerOptions);
  self.app = app;

  registerBodyParsers(app);
  const limiter = {
    unseal: new RateLimiter(deps.limits.unsealPerMinute, 60_000, deps.clock),
    login: new RateLimiter(deps.limits.loginPerMinute, 60_000, deps.clock),
  };

  const byUrl = new Map<string, Map<HttpMethod, RouteSpec>>();
  for (const spec of deps.routes) {
    const methods = Array.isArray(spec.method) ? spec.method : [spec.method as HttpMethod];
    const table = byUrl.get(spec.url) ?? new Map<HttpMethod, RouteSpec>();
    for (const m of methods) {
      if (table.has(m)) throw new Error(`duplicate route ${m} ${spec.url}`);
      table.set(m, spec);
    }
    byUrl.set(spec.url, table);
  }

  for (const [url, table] of byUrl) {
    // Node's HTTP parser has no LIST method: clients send GET ?list=true, and list-method.ts turns a
    // raw LIST request into exactly that.
    const fastifyMethods = new Set<string>(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]);
    app.route({
      method: [...fastifyMethods],
      url,
      handler: (req, reply) => dispatch(req, reply, table),
    });
  }

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return metrics.render(deps.gauges?.() ?? {});
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new FleetError("FR_NOT_FOUND", `no route for ${req.method} ${req.url.split("?")[0]}`);
    sendError(reply, deps.isSealed() && req.url.startsWith("/v1/") ? new FleetError("FR_SEALED") : err);
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, req, reply) => {
    const e = fastifyErrorToFleet(error);
    logFailure(e, String(req.id), req.method, apiPath(req.url));
    sendError(reply, e);
  });

  /** Writes a server-side failure (5xx, not "sealed") to the server's log, cause and all. */
  function logFailure(e: FleetError, requestId: string, method: string, path: string): void {
    if (!deps.log || e.status < 500 || e.code === "FR_SEALED") return;
    deps.log(`error: request ${requestId} (${method} ${path}) failed: ${describeFailure(e)}`);
  }

  function writeAudit(entry: AuditRecord, durable = true): Promise<void> {
    // Not an async function: the entry's own promise is passed on, and only a failure takes a detour.
    let written: Promise<void>;
    try {
      written = deps.audit.log(entry, durable);
    } catch (e) {
      written = Promise.reject(e as Error);
    }
    return written.catch(auditFailed);
  }

  function auditFailed(e: unknown): never {
    metrics.auditFailures++;
    throw e instanceof FleetError && e.code === "FR_AUDIT_FAILED"
      ? e
      : new FleetError("FR_AUDIT_FAILED", undefined, { cause: e });
  }

  /**
   * One request's state and the steps after its handler: a class, so a request costs one object rather
   * than a bag of closures (and the pipeline's variables live in its fields, not in a closure context).
   */
  class RequestState implements RouteContext {
    auth: RequestAuth | undefined = undefined;
    policyPath: string;
    extraAudit: Record<string, unknown> | undefined = undefined;
    /** Audit events and other waits (beforeReply) the reply holds for along with the response entry. */
    pendingWaits: Promise<unknown>[] | undefined = undefined;
    /** Why the request fails, once it does; the reply is then this error. */
    failure: FleetError | undefined = undefined;
    /** Whether the request changes nothing: its one entry is written after the handler (see dispatch). */
    readonly readOnly: boolean;

    constructor(
      readonly req: FastifyRequest,
      readonly reply: FastifyReply,
      readonly spec: RouteSpec,
      readonly started: number,
      readonly requestId: string,
      readonly method: HttpMethod,
      readonly path: string,
      readonly params: Readonly<Record<string, string>>,
      readonly query: Readonly<Record<string, string>>,
      readonly body: Record<string, unknown>,
      readonly rawBody: Buffer | undefined,
      readonly token: string | undefined,
    ) {
      this.policyPath = path;
      this.readOnly = method === "GET" || method === "LIST" || method === "HEAD" || spec.readOnly === true;
    }

    /** The parameters ACL rules are checked against: the query for reads, the body otherwise. */
    aclParams(): Readonly<Record<string, unknown>> {
      return this.method === "GET" || this.method === "LIST" || this.method === "HEAD"
        ? withoutListFlag(this.query)
        : this.body;
    }

    grantedNow(capability: Capability): boolean {
      if (!this.auth) return false;
      return deps.authorizer.allowedNow(this.auth, this.policyPath, capability, this.aclParams()) === true;
    }

    beforeReply(p: Promise<unknown>): void {
      p.catch(() => undefined);
      (this.pendingWaits ??= []).push(p);
    }

    auditData(fields: Record<string, unknown>): void {
      this.extraAudit = Object.assign(this.extraAudit ?? {}, fields);
    }

    // An event joins the audit queue now; the reply waits until it is durable (with the response entry,
    // in the same group commit), and a failed event fails the request.
    auditEvent(
      name: string,
      fields?: Record<string, string | number | boolean>,
      data?: Record<string, unknown>,
    ): Promise<void> {
      const p = writeAudit({
        type: "event",
        request: this.requestInfo(),
        event: { name, ...(fields ? { fields } : {}), ...(data ? { data } : {}) },
      });
      this.beforeReply(p);
      return Promise.resolve();
    }

    requestInfo(data?: Record<string, unknown>): NonNullable<AuditRecord["request"]> {
      const r: NonNullable<AuditRecord["request"]> = {
        id: this.requestId,
        operation: operationOf[this.method],
        path: this.path,
        remote_address: this.req.ip,
      };
      if (this.token) r.client_token = this.token;
      if (this.auth) r.client_token_accessor = this.auth.accessor;
      r.policy_path = this.policyPath;
      if (data) r.data = data;
      return r;
    }

    /** What a read's one entry records of the request: its query (a GET), or its body (a read-only POST). */
    readOnlyData(): Record<string, unknown> | undefined {
      const m = this.method;
      if (m === "GET" || m === "LIST" || m === "HEAD") {
        for (const _k in this.query) return { ...this.query };
        return undefined;
      }
      const d = auditBody(this.body, this.spec.redact);
      return d && Object.keys(d).length ? d : undefined;
    }

    responseInfo(status: number, res: RouteResult | null): NonNullable<AuditRecord["response"]> {
      const r: NonNullable<AuditRecord["response"]> = { status };
      if (res && res.kind === "envelope") {
        if (res.data !== undefined) r.data = res.data;
        if (res.wrapInfo) r.data = { wrap_info: res.wrapInfo };
        if (res.auth) r.auth = res.auth as { client_token?: string };
      }
      if (this.extraAudit && Object.keys(this.extraAudit).length)
        r.data = { ...(payloadData(res) ?? {}), ...this.extraAudit };
      return r;
    }

    /** Renders the result (or the failure), writes the response entry, then replies. */
    async finish(res: RouteResult | null): Promise<FastifyReply | undefined> {
      const { reply, method, path } = this;
      let payload: unknown;
      if (!this.failure && res) {
        try {
          payload = renderResult(res, this.requestId);
        } catch (e) {
          // A result that cannot be written as JSON is the server's fault, audited and answered as such.
          this.failure = toFleetError(e);
          res = null;
        }
      }
      let failure = this.failure;
      if (failure) {
        payload = errorBody(failure);
        logFailure(failure, this.requestId, method, path);
      }
      const status = failure ? failure.status : (res?.status ?? (res?.kind === "empty" ? 204 : 200));
      // The response entry is written before the reply leaves; if it cannot be, the client gets an error.
      if (!(failure && failure.code === "FR_AUDIT_FAILED")) {
        try {
          const entry: AuditRecord = {
            type: "response",
            request: this.requestInfo(this.readOnly ? this.readOnlyData() : undefined),
          };
          if (this.auth) entry.auth = authInfo(this.auth);
          entry.response = this.responseInfo(status, res);
          if (failure) entry.error = failure.message;
          const durable = !this.readOnly || syncReads || failure !== undefined;
          const waits = this.pendingWaits;
          if (waits) {
            await Promise.all([...waits, writeAudit(entry, durable)]);
          } else {
            // Most requests wait for their response entry alone: awaited here, without a wrapper promise.
            try {
              await deps.audit.log(entry, durable);
            } catch (e) {
              auditFailed(e);
            }
          }
        } catch (e) {
          failure = this.failure = toFleetError(e);
          logFailure(failure, this.requestId, method, path);
          metrics.observe(this.spec.url, 500, performance.now() - this.started);
          return handedOver(sendError(reply, failure));
        }
      }
      metrics.observe(this.spec.url, status, performance.now() - this.started);
      if (failure) return handedOver(sendError(reply, failure));
      if (!res || res.kind === "empty") return handedOver(reply.code(204).send());
      reply.code(status);
      if (res.kind === "raw") {
        if (res.headers) reply.headers(res.headers);
        if (res.contentType) reply.header("content-type", res.contentType);
        if (this.req.method === "HEAD") return handedOver(reply.send());
        return handedOver(reply.send(payload));
      }
      // The envelope is JSON text already (renderResult): Fastify sends a string with a type as it is.
      reply.header("content-type", "application/json; charset=utf-8");
      return handedOver(reply.send(payload));
    }
  }

  async function dispatch(req: FastifyRequest, reply: FastifyReply, table: Map<HttpMethod, RouteSpec>) {
    const started = performance.now();
    const query = (req.query ?? {}) as Record<string, string>;
    let method = req.method as HttpMethod;
    if (method === "GET" && (query.list === "true" || query.list === "1")) method = "LIST";
    const spec = table.get(method) ?? (method === "HEAD" ? table.get("GET") : undefined);
    const path = apiPath(req.url);
    if (!spec) {
      // Sealed, a route that does not answer while sealed says so whatever the method (as Vault: 503).
      const sealed = deps.isSealed() && ![...table.values()].some((s) => s.whileSealed);
      sendError(
        reply,
        sealed
          ? new FleetError("FR_SEALED")
          : new FleetError("FR_METHOD_NOT_ALLOWED", `${method} is not supported on ${path}`),
      );
      return handedOver(reply);
    }

    const rawBody = Buffer.isBuffer(req.body) ? req.body : undefined;
    const body = rawBody ? {} : ((req.body as Record<string, unknown> | undefined) ?? {});
    const ctx = new RequestState(
      req,
      reply,
      spec,
      started,
      requestIds.uuid(),
      method,
      path,
      (req.params ?? {}) as Record<string, string>,
      query,
      body,
      rawBody,
      readToken(req),
    );
    if (spec.policyPath) ctx.policyPath = safePolicyPath(spec, ctx);

    let wrapTtl: number | undefined;
    try {
      if (deps.isSealed() && !spec.whileSealed) throw new FleetError("FR_SEALED");
      if (spec.rateLimit && !limiter[spec.rateLimit].take(req.ip)) {
        throw new FleetError(
          "FR_RATE_LIMITED",
          `too many ${spec.rateLimit} attempts from ${req.ip}; retry in a minute`,
        );
      }
      if (spec.auth === "token") {
        const token = ctx.token;
        if (!token) throw new FleetError("FR_MISSING_TOKEN", "no token: set the X-Vault-Token header");
        let auth: RequestAuth;
        try {
          // Most requests come with a token this node checked moments ago: no need to wait for anything.
          auth = deps.authorizer.cachedAuth(token) ?? (await deps.authorizer.authenticate(token));
        } catch (e) {
          const fe = toFleetError(e);
          await writeAudit({
            type: "event",
            request: ctx.requestInfo(),
            event: { name: "auth.token_rejected", fields: { code: fe.code } },
          });
          throw fe;
        }
        ctx.auth = auth;
        const capability =
          typeof spec.capability === "function"
            ? await spec.capability(ctx)
            : (spec.capability ?? defaultCapability[method]);
        const params = ctx.aclParams();
        const allowed =
          deps.authorizer.allowedNow(auth, ctx.policyPath, capability, params) ??
          (await deps.authorizer.allowed(auth, ctx.policyPath, capability, params));
        if (!allowed) {
          await writeAudit({
            type: "event",
            request: ctx.requestInfo(),
            auth: authInfo(auth),
            event: { name: "auth.denied", fields: { path: ctx.policyPath, capability } },
          });
          throw new FleetError(
            "FR_PERMISSION_DENIED",
            `no policy of this token grants ${capability} on ${ctx.policyPath}`,
            { status: 403 },
          );
        }
      }
      // Checked before the handler runs: a bad header must not refuse a write that was already made.
      wrapTtl = wrapTtlOf(req.headers["x-vault-wrap-ttl"]);
    } catch (e) {
      ctx.failure = toFleetError(e);
    }

    // A request that may change state writes its request entry before the handler runs: without it the
    // handler never runs. A read changes nothing, so its one entry (request and response together) is
    // written after the handler and before the reply; if it cannot be written, nothing is sent.
    if (!ctx.readOnly) {
      try {
        await writeAudit({
          type: "request",
          request: ctx.requestInfo(auditBody(body, spec.redact)),
          ...(ctx.auth ? { auth: authInfo(ctx.auth) } : {}),
          ...(ctx.failure ? { error: ctx.failure.message } : {}),
        });
      } catch (e) {
        ctx.failure = toFleetError(e);
        return await ctx.finish(null);
      }
    }

    let result: RouteResult | undefined;
    if (!ctx.failure) {
      try {
        result = await spec.handler(ctx);
        if (wrapTtl !== undefined && deps.wrap && result.kind === "envelope" && !result.wrapInfo) {
          result = { kind: "envelope", status: 200, wrapInfo: await deps.wrap(ctx, result, wrapTtl) };
        }
      } catch (e) {
        ctx.failure = toFleetError(e);
      }
    }
    // Awaited rather than returned: an async function that returns a promise resolves its own through a
    // thenable job, two extra microtask turns per request.
    return await ctx.finish(result ?? null);
  }

  /** The X-Vault-Wrap-TTL header in seconds; undefined without one. */
  function wrapTtlOf(header: string | string[] | undefined): number | undefined {
    if (typeof header !== "string" || !header) return undefined;
    const ttl = parseDuration(header, "X-Vault-Wrap-TTL");
    if (ttl <= 0)
      throw new FleetError("FR_VALIDATION", "X-Vault-Wrap-TTL must be a positive duration such as 5m");
    if (!deps.wrap)
      throw new FleetError("FR_VALIDATION", "response wrapping is not available on this server");
    return ttl;
  }

  return app;
}

function withoutListFlag(query: Record<string, string>): Record<string, unknown> {
  if (!("list" in query)) return query;
  const { list: _list, ...rest } = query;
  return rest;
}

function payloadData(res: RouteResult | null): Record<string, unknown> | undefined {
  if (res?.kind === "envelope" && res.data && typeof res.data === "object")
    return res.data as Record<string, unknown>;
  return undefined;
}

function safePolicyPath(spec: RouteSpec, ctx: RouteContext): string {
  try {
    return spec.policyPath!(ctx);
  } catch {
    return ctx.path;
  }
}

const operationOf: Record<HttpMethod, string> = {
  GET: "get",
  HEAD: "head",
  LIST: "list",
  DELETE: "delete",
  PATCH: "patch",
  POST: "post",
  PUT: "put",
};

/** An authenticated token's audit section; cached per auth object (the token cache hands out the same one). */
const authInfos = new WeakMap<RequestAuth, NonNullable<AuditRecord["auth"]>>();
function authInfo(auth: RequestAuth): NonNullable<AuditRecord["auth"]> {
  let info = authInfos.get(auth);
  if (!info) {
    // Frozen (deeply): the audit log may then keep its redacted JSON for the next request of the token.
    info = Object.freeze({
      accessor: auth.accessor,
      policies: Object.freeze([...auth.policies]) as string[],
      display_name: auth.displayName,
    });
    authInfos.set(auth, info);
  }
  return info;
}

function auditBody(
  body: Record<string, unknown>,
  redact: readonly string[] | undefined,
): Record<string, unknown> | undefined {
  if (!body || Object.keys(body).length === 0) return undefined;
  if (!redact?.length) return body;
  const copy: Record<string, unknown> = { ...body };
  for (const k of redact) if (k in copy) copy[k] = "[redacted]";
  return copy;
}

/**
 * What the route handler resolves to once it has called reply.send(): nothing, when the reply has gone out
 * (Fastify then has nothing left to do), else the reply itself, which Fastify waits on. Resolving an async
 * handler with the reply makes the promise adopt it as a thenable: an extra job on every request.
 */
function handedOver(reply: FastifyReply): FastifyReply | undefined {
  return reply.sent ? undefined : reply;
}

/** The API path without /v1/ and the query string. */
function apiPath(url: string): string {
  const q = url.indexOf("?");
  let p = q === -1 ? url : url.slice(0, q);
  if (p.includes("%")) {
    try {
      p = decodeURIComponent(p);
    } catch {
      /* keep it raw; routes validate their own parameters */
    }
  }
  if (p.startsWith("/v1/")) p = p.slice(4);
  let i = 0;
  while (p.charCodeAt(i) === 47) i++;
  return i ? p.slice(i) : p;
}

function readToken(req: FastifyRequest): string | undefined {
  const h = req.headers["x-vault-token"];
  if (typeof h === "string" && h) return h;
  const a = req.headers.authorization;
  if (typeof a === "string" && a.startsWith("Bearer ")) return a.slice(7).trim() || undefined;
  return undefined;
}

function renderResult(res: RouteResult, requestId: string): unknown {
  if (res.kind === "raw") return res.body;
  if (res.kind === "empty") return undefined;
  return envelopeJson(res, requestId);
}

/** The error's code and message, then each cause down the chain (the innermost with its stack). */
export function describeFailure(e: FleetError): string {
  let out = `${e.code}: ${e.message}`;
  let cause: unknown = e.cause;
  for (let depth = 0; cause !== undefined && depth < 8; depth++) {
    const next = (cause as { cause?: unknown })?.cause;
    if (cause instanceof Error) {
      out +=
        next === undefined && cause.stack ? `\n  caused by ${cause.stack}` : `\n  caused by ${cause.message}`;
    } else {
      out += `\n  caused by ${String(cause)}`;
    }
    cause = next;
  }
  return out;
}

function errorBody(e: FleetError): unknown {
  return { errors: e.publicMessages, code: e.code };
}

function sendError(reply: FastifyReply, e: FleetError): FastifyReply {
  const status = e.status;
  reply.code(status).header("content-type", "application/json; charset=utf-8");
  if (status === 429) reply.header("retry-after", "60");
  return reply.send(JSON.stringify(errorBody(e)));
}

function fastifyErrorToFleet(error: Error & { code?: string; statusCode?: number }): FleetError {
  if (error instanceof FleetError) return error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new FleetError("FR_BODY_TOO_LARGE", error.message, { cause: error });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new FleetError("FR_UNSUPPORTED_MEDIA_TYPE", error.message, { cause: error });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new FleetError("FR_INVALID_JSON", error.message, { cause: error });
    default:
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return new FleetError("FR_BAD_REQUEST", error.message, { cause: error, status: error.statusCode });
      }
      return new FleetError("FR_INTERNAL", undefined, { cause: error });
  }
}

/**
 * JSON for everything (Vault clients do not always send a content type), raw bytes for the binary
 * types some routes declare. A JSON body must be an object.
 */
function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  const parseJson = (
    _req: FastifyRequest,
    body: string | Buffer,
    done: (err: Error | null, body?: unknown) => void,
  ) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, {});
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return done(new FleetError("FR_INVALID_JSON", (e as Error).message));
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      return done(new FleetError("FR_INVALID_JSON", "the body must be a JSON object"));
    }
    done(null, parsed);
  };
  app.addContentTypeParser("application/json", { parseAs: "string" }, parseJson);
  for (const t of [
    "application/ocsp-request",
    "application/pkcs10",
    "application/octet-stream",
    "application/cbor",
    "application/pkix-cert",
  ]) {
    app.addContentTypeParser(t, { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  }
  app.addContentTypeParser("*", { parseAs: "string" }, parseJson);
}
