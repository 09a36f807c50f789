import { PostgresAdapter, type Kysely } from "kysely";
import type { Dialect } from "./types.js";

/**
 * Column types that read back the same on both dialects, for migrations (which only get a Kysely):
 * `blobType` reads back as Buffer, `bigintType` as a JS number (the pool's int8 parser), text as string.
 */
export function dialectOf(db: Kysely<unknown>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
}

export function blobType(dialect: Dialect): "blob" | "bytea" {
  return dialect === "postgres" ? "bytea" : "blob";
}

/** 64-bit integer column (times in ms, counters). SQLite's integer is already 64-bit. */
export function bigintType(dialect: Dialect): "bigint" | "integer" {
  return dialect === "postgres" ? "bigint" : "integer";
}
