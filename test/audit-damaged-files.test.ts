import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../src/audit/log.js";
import { tailAuditLog } from "../src/audit/tail.js";
import { testSigner } from "../src/audit/test-signer.js";
import { verifyAuditLog } from "../src/audit/verify.js";
import { FleetError } from "../src/errors/index.js";
import { ManualClock } from "../src/util/clock.js";

let dir: string;
let lines: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-damaged-"));
  const file = join(dir, "clean.log");
  const log = await AuditLog.open({ path: file, signer: testSigner(), clock: new ManualClock() });
  for (let i = 1; i <= 3; i++) {
    await log.log({ type: "request", request: { id: `r${i}`, operation: "read", path: `kv/${i}` } });
  }
  await log.close();
  lines = (await readFile(file, "utf8")).trimEnd().split("\n");
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function verifyText(name: string, text: string, opts = {}) {
  const path = join(dir, name);
  await writeFile(path, text);
  return verifyAuditLog(path, opts);
}

describe("audit verify and tail on damaged files", () => {
  it("fails a log whose last line ends with CRLF instead of passing it", async () => {
    const text =
      lines
        .slice(0, -1)
        .map((l) => l + "\n")
        .join("") + `${lines.at(-1)}\r\n`;
    const r = await verifyText("crlf-last.log", text);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ line: lines.length, kind: "malformed" });
    expect(r.problem?.message).toContain("CRLF");
  });

  it("fails a field added to the last (signed) checkpoint line, which no later hash covers", async () => {
    const last = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    expect(last.type).toBe("checkpoint");
    const forged = JSON.stringify({ ...last, note: "all fine" });
    const r = await verifyText(
      "extra-field.log",
      [...lines.slice(0, -1), forged].map((l) => l + "\n").join(""),
    );
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ line: lines.length, kind: "malformed" });
    expect(r.problem?.message).toContain('"note"');
  });

  it("names line 1 of a CRLF-converted log, not line 2 as edited", async () => {
    const r = await verifyText("crlf.log", lines.map((l) => l + "\r\n").join(""));
    expect(r.problem).toMatchObject({ line: 1, kind: "malformed" });
  });

  it("says what a NUL-filled tail and an empty line are", async () => {
    const body = lines.map((l) => l + "\n").join("");
    const nul = await verifyText("nul.log", body + "\0".repeat(64));
    expect(nul.problem?.message).toContain("NUL");
    const blank = await verifyText("blank.log", body + "\n");
    expect(blank.problem).toMatchObject({ line: lines.length + 1, kind: "malformed" });
    expect(blank.problem?.message).toContain("empty");
  });

  it("fails a log from another install even before its first checkpoint", async () => {
    const other = testSigner("ed25519");
    const r = await verifyText(
      "other.log",
      lines
        .slice(0, 2)
        .map((l) => l + "\n")
        .join(""),
      {
        publicKey: other.publicKey,
      },
    );
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ line: 1, kind: "bad-signature" });
  });

  it("answers FR_AUDIT_FILE naming the path for a directory (verify and tail)", async () => {
    const d = join(dir, "a-directory.log");
    await mkdir(d);
    for (const run of [
      () => verifyAuditLog(d),
      () => tailAuditLog(d, { lines: 1, follow: false, onLine: () => undefined }),
    ]) {
      const e: unknown = await run().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FleetError);
      expect((e as FleetError).code).toBe("FR_AUDIT_FILE");
      expect((e as FleetError).message).toContain(d);
    }
  });
});
