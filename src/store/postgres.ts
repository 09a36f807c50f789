import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { fail } from "../errors/index.js";

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * Per-pool type parsers: int8 and numeric come back as JS numbers (times in ms, counters), without
 * touching pg's global parsers that other code in the process may rely on.
 */
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if ((oid === INT8_OID || oid === NUMERIC_OID) && format !== "binary") {
      return (v: string) => Number(v);
    }
    return pg.types.getTypeParser(oid, format ?? "text");
  },
} as unknown as pg.CustomTypesConfig;

/** Opens a pg pool and checks, within connectTimeoutMs, that the server answers. */
export async function openPostgres(
  url: string,
  where: { host: string; port: number; database: string; user: string },
  connectTimeoutMs: number,
): Promise<Kysely<object>> {
  checkUserKnown(where);
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs, types });
  // An idle client losing its server must not crash the process; the next query reports the error.
  pool.on("error", () => {});
  const db = new Kysely<object>({ dialect: new PostgresDialect({ pool }) });
  try {
    await withTimeout(sql`select 1`.execute(db), connectTimeoutMs);
  } catch (e) {
    await db.destroy().catch(() => {});
    const reason = describePgError(e);
    fail(
      "FR_STORE_UNAVAILABLE",
      `PostgreSQL at ${where.host}:${where.port} (database "${where.database}") is not usable: ${reason}`,
      { cause: e },
    );
  }
  return db;
}

/**
 * pg logs in as the URL's user, else PGUSER, else USER as it was when pg was loaded (pg.defaults.user).
 * With none of them it sends no user at all, and the server's refusal reads like a wrong password; a
 * service started without USER (systemd, `env -i`, many containers) hits this, so it is said plainly.
 */
function checkUserKnown(where: { host: string; port: number; database: string; user: string }): void {
  if (where.user || process.env.PGUSER || pg.defaults.user) return;
  const db = where.database ? `/${encodeURIComponent(where.database)}` : "/DATABASE";
  fail(
    "FR_STORE_URL",
    `the postgres URL names no user, and no default user was found (PGUSER and USER are not set in the ` +
      `server's environment); put the user in the URL, as postgres://USER@${where.host}:${where.port}${db}`,
  );
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A short reason without the connection string (which may hold a password). */
function describePgError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused; is the server running and listening there?";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the host name does not resolve";
    case "ETIMEDOUT":
      return "the connection timed out";
    case "3D000":
      return "the database does not exist; create it first";
    case "28P01":
    case "28000":
      return "authentication failed; check the user and password";
    default:
      return (err.message ?? String(e)).replace(/postgres(ql)?:\/\/\S+/g, "<url>");
  }
}
