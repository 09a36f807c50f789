import path from "node:path";
import { fail } from "../errors/index.js";

/** Where a store lives, parsed from its URL. */
export type StoreLocation =
  | { dialect: "sqlite"; file: string /* absolute path, or ":memory:" */ }
  | {
      dialect: "postgres";
      url: string;
      host: string;
      port: number;
      database: string;
      /** The user the URL names (before `@`, or a `user=` parameter); "" when it names none. */
      user: string;
    };

/**
 * Parses `sqlite:PATH` (relative to cwd; `sqlite::memory:`; `sqlite:///abs` also accepted) and
 * `postgres://…` / `postgresql://…`. Anything else is FR_STORE_URL naming the scheme.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme === "sqlite") {
    let rest = url.slice(m![0].length);
    if (rest.startsWith("//")) rest = rest.slice(2);
    if (rest === "") fail("FR_STORE_URL", 'the sqlite URL has no path; use sqlite:PATH or "sqlite::memory:"');
    return { dialect: "sqlite", file: rest === ":memory:" ? rest : path.resolve(rest) };
  }
  if (scheme === "postgres" || scheme === "postgresql") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      fail(
        "FR_STORE_URL",
        "the postgres URL cannot be parsed; use postgres://USER[:PASSWORD]@HOST:PORT/DATABASE",
      );
    }
    return {
      dialect: "postgres",
      url,
      host: parsed.hostname || "localhost",
      port: parsed.port ? Number(parsed.port) : 5432,
      database: decodeUrlPart(parsed.pathname.replace(/^\//, "")) || decodeUrlPart(parsed.username),
      user: decodeUrlPart(parsed.username) || (parsed.searchParams.get("user") ?? ""),
    };
  }
  fail(
    "FR_STORE_URL",
    `scheme "${scheme ?? url.split(":")[0] ?? ""}" is not supported; use sqlite:PATH or postgres://HOST:PORT/DATABASE`,
  );
}

/** Percent-decodes a database or user name; a bad escape is FR_STORE_URL, not a bare URIError. */
function decodeUrlPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(
      "FR_STORE_URL",
      "the postgres URL has a bad percent-escape in its user or database name; write % as %25",
    );
  }
}
