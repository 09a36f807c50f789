import { statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** An error the CLI reports as one line and exit code 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * Checks, before any work is done (a key generated, a request sent), that `file` can be written: it is
 * not a directory and its directory exists. `what` names it in the error (`--out`, say).
 */
export function checkOutputPath(file: string, what: string): void {
  const st = statSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new CliError(`${what} ${file} is a directory; name a file in it`, 2);
  const dir = dirname(resolve(file));
  const parent = statSync(dir, { throwIfNoEntry: false });
  if (!parent) throw new CliError(`${what} ${file}: the directory ${dir} does not exist; create it first`, 2);
  if (!parent.isDirectory()) throw new CliError(`${what} ${file}: ${dir} is not a directory`, 2);
}

/** Writes an output file; a failure is one line naming the file and why (a full disk, no permission). */
export function writeOutputFile(
  file: string,
  data: string | Uint8Array,
  what: string,
  options?: { mode?: number },
): void {
  try {
    writeFileSync(file, data, options);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError(`cannot write ${what} ${file}: ${err.code ?? ""}${err.code ? " " : ""}${err.message}`);
  }
}

/** table and json for every command; pem and der where a command outputs certificates, CRLs or keys. */
export type Format = "table" | "json" | "pem" | "der";

/** Prints a value: pretty JSON for scripts, aligned key/value lines for people. */
export function print(value: unknown, format: Format): void {
  if (format === "pem" || format === "der") {
    throw new CliError(
      `--format ${format} applies only to commands that output certificates, CRLs or keys`,
      2,
    );
  }
  if (format === "json") {
    process.stdout.write(JSON.stringify(value, null, 2) + "\n");
    return;
  }
  if (value === null || value === undefined) return;
  if (typeof value !== "object") {
    process.stdout.write(String(value) + "\n");
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value)
      process.stdout.write((typeof v === "object" ? JSON.stringify(v) : String(v)) + "\n");
    return;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const width = Math.max(3, ...entries.map(([k]) => k.length));
  process.stdout.write(`${"Key".padEnd(width)}    Value\n${"---".padEnd(width)}    -----\n`);
  for (const [k, v] of entries) {
    const shown =
      v === null || v === undefined ? "n/a" : typeof v === "object" ? JSON.stringify(v) : String(v);
    process.stdout.write(`${k.padEnd(width)}    ${shown}\n`);
  }
}

/**
 * Characters a terminal may act on rather than show — C0 and C1 controls (ESC, CSI …), DEL, line and
 * paragraph separators, bidirectional overrides — as \uXXXX escapes, so a line printed as it was read (an
 * audit log line, which is JSON: the escape means the same inside a string) cannot drive the terminal.
 */
export function terminalSafe(line: string): string {
  return line.replace(
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}
