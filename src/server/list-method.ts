import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { FleetError } from "../errors/index.js";

const MAX_HEADERS = 100;

/**
 * Vault clients (hvac, the vault CLI) send the non-standard `LIST` method, which Node's HTTP parser
 * rejects before any route sees it. This client-error handler takes such a request from the raw bytes,
 * serves it as `GET …?list=true` through the app (the same pipeline: seal, auth, ACL, audit), answers on
 * the socket and closes it, since the parser cannot continue on that connection. Every other parse
 * error gets the API's JSON error (see parseErrorResponse).
 */
export function listMethodHandler(getApp: () => FastifyInstance | undefined) {
  return (err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket): void => {
    const raw = err.rawPacket;
    const app = getApp();
    if (
      err.code === "HPE_INVALID_METHOD" &&
      raw &&
      app &&
      raw.subarray(0, 5).toString("latin1") === "LIST "
    ) {
      serveList(app, raw, socket).catch(() => socket.destroy());
      return;
    }
    if (socket.writable) socket.end(parseErrorResponse(err.code));
    else socket.destroy();
  };
}

/**
 * The answer to a request Node's HTTP parser refused: the API's JSON error body, saying what was wrong,
 * and the connection closed (the parser cannot go on after it).
 */
export function parseErrorResponse(parserCode: string | undefined): string {
  let e: FleetError;
  if (parserCode === "HPE_INVALID_METHOD") {
    e = new FleetError(
      "FR_METHOD_NOT_ALLOWED",
      "unknown HTTP method; the API takes GET, LIST, POST, PUT, PATCH, DELETE and HEAD",
    );
  } else if (parserCode === "HPE_HEADER_OVERFLOW") {
    e = new FleetError("FR_BAD_REQUEST", "the request's headers are too large", { status: 431 });
  } else {
    e = new FleetError(
      "FR_BAD_REQUEST",
      `the request is not valid HTTP/1.1${parserCode ? ` (${parserCode})` : ""}`,
    );
  }
  const body = JSON.stringify({ errors: e.publicMessages, code: e.code });
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ""}\r\nConnection: close\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

async function serveList(app: FastifyInstance, raw: Buffer, socket: Socket): Promise<void> {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("incomplete request head");
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const [, target, version] = /^LIST (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? "") ?? [];
  if (!target || !version || lines.length > MAX_HEADERS + 1) throw new Error("malformed LIST request");
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) throw new Error("malformed header");
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  const body = raw.subarray(end + 4, end + 4 + (Number.isFinite(length) ? length : 0));
  delete headers["content-length"];
  delete headers["transfer-encoding"];
  const url = target + (target.includes("?") ? "&" : "?") + "list=true";
  const res = await app.inject({
    method: "GET",
    url,
    headers,
    remoteAddress: socket.remoteAddress ?? "127.0.0.1",
    ...(body.length ? { payload: body } : {}),
  });
  const out: string[] = [`HTTP/1.1 ${res.statusCode} ${STATUS_CODES[res.statusCode] ?? ""}`];
  for (const [k, v] of Object.entries(res.headers)) {
    if (["connection", "transfer-encoding", "content-length", "keep-alive"].includes(k)) continue;
    for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) out.push(`${k}: ${String(one)}`);
  }
  out.push(`content-length: ${res.rawPayload.length}`, "connection: close", "", "");
  socket.end(Buffer.concat([Buffer.from(out.join("\r\n"), "latin1"), res.rawPayload]));
}
