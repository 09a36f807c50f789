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
