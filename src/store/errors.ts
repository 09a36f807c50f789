/**
 * Whether a store error is a unique (or primary key) constraint violation, on either dialect: PostgreSQL's
 * SQLSTATE 23505, SQLite's SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY. Callers turn it into FR_CONFLICT or a
 * retry; any other error is not a conflict and must not be reported as one.
 */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof err?.code === "string" ? err.code : "";
  if (code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY")
    return true;
  return typeof err?.message === "string" && /UNIQUE constraint failed/.test(err.message);
}
