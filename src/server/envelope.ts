import { jsonString } from "../audit/json.js";
import type { RouteResult } from "./types.js";

type Envelope = Extract<RouteResult, { kind: "envelope" }>;

/** Vault's response envelope as an object, in Vault's field order. */
export function envelopeObject(res: Envelope, requestId: string): Record<string, unknown> {
  return {
    request_id: requestId,
    lease_id: "",
    renewable: res.renewable ?? false,
    lease_duration: res.leaseDuration ?? 0,
    data: res.data ?? null,
    wrap_info: res.wrapInfo ?? null,
    warnings: res.warnings?.length ? res.warnings : null,
    auth: res.auth ?? null,
  };
}

/**
 * Vault's envelope around `data`, with `data`'s fields repeated at the top level: the form some sys
 * endpoints answer in (sys/mounts, sys/policy), since older clients read the top level.
 */
export function topLevelEnvelope(data: Record<string, unknown>, requestId: string): Record<string, unknown> {
  return { ...data, ...envelopeObject({ kind: "envelope", data }, requestId) };
}

/**
 * JSON.stringify(envelopeObject(res, requestId)), written around the parts that vary: the fixed fields
 * cost nothing to serialize on every response. envelope.test.ts holds the two equal.
 */
export function envelopeJson(res: Envelope, requestId: string): string {
  // Most responses carry data alone: everything around it is one constant, and the reply is built from
  // five pieces instead of fifteen (each piece is allocated, then copied when the reply is written).
  if (
    res.renewable !== true &&
    (res.leaseDuration === undefined || res.leaseDuration === 0) &&
    res.wrapInfo == null &&
    res.auth == null &&
    !res.warnings?.length
  ) {
    return (
      '{"request_id":' +
      jsonString(requestId) +
      ',"lease_id":"","renewable":false,"lease_duration":0,"data":' +
      json(res.data ?? null) +
      ',"wrap_info":null,"warnings":null,"auth":null}'
    );
  }
  return (
    '{"request_id":' +
    jsonString(requestId) +
    ',"lease_id":"","renewable":' +
    (res.renewable === true ? "true" : "false") +
    ',"lease_duration":' +
    json(res.leaseDuration ?? 0) +
    ',"data":' +
    json(res.data ?? null) +
    ',"wrap_info":' +
    json(res.wrapInfo ?? null) +
    ',"warnings":' +
    (res.warnings?.length ? JSON.stringify(res.warnings) : "null") +
    ',"auth":' +
    json(res.auth ?? null) +
    "}"
  );
}

/** JSON.stringify as a property value: what it cannot write (undefined, functions) becomes null, as in an object. */
function json(v: unknown): string {
  // Most of the envelope's varying fields are null or 0 on most responses.
  if (v === null) return "null";
  if (v === 0) return "0";
  return JSON.stringify(v) ?? "null";
}
