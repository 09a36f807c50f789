import { codes } from "./codes.js";

/** docs/errors.md, generated from the catalog (`npm run docs:errors`); a test keeps the two in step. */
export function renderErrorsDoc(): string {
  const lines = [
    "# Error codes",
    "",
    'Every error Fleetroot returns over HTTP has the body `{"errors": ["<message>"], "code": "FR_…"}` and the',
    "status below (the status Vault uses for the same situation). The CLI prints the message and the code and",
    "exits 1. Codes are stable: scripts may match on them. This page is generated from `src/errors/codes.ts`.",
    "",
    "| code | HTTP status | meaning |",
    "| --- | --- | --- |",
  ];
  for (const [code, spec] of Object.entries(codes)) {
    lines.push(`| \`${code}\` | ${spec.status} | ${spec.message.replace(/\|/g, "\\|")} |`);
  }
  return lines.join("\n") + "\n";
}
