import { codes, type ErrorCode } from "./codes.js";

/**
 * A typed error: `code` is stable and documented, `publicMessage` is safe to show a client, and
 * `detail` says what exactly was wrong (also safe to show). `cause` stays in the server log only.
 */
export class FleetError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    detail?: string,
    options?: { cause?: unknown; status?: number; extra?: Record<string, unknown> },
  ) {
    const spec = codes[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message, { cause: options?.cause });
    this.name = "FleetError";
    this.code = code;
    this.status = options?.status ?? spec.status;
    this.detail = detail;
    this.extra = options?.extra;
  }

  /** The messages a client sees, in Vault's `errors` array form. */
  get publicMessages(): string[] {
    return [this.message];
  }
}

export function isFleetError(e: unknown): e is FleetError {
  return e instanceof FleetError;
}

/** Throws a FleetError; handy in expressions (`x ?? fail(...)`). */
export function fail(
  code: ErrorCode,
  detail?: string,
  options?: { cause?: unknown; status?: number },
): never {
  throw new FleetError(code, detail, options);
}

/** Wraps an unknown thrown value into a FleetError, keeping FleetErrors as they are. */
export function toFleetError(e: unknown, fallback: ErrorCode = "FR_INTERNAL"): FleetError {
  if (e instanceof FleetError) return e;
  return new FleetError(fallback, undefined, { cause: e });
}
