import { execFileSync } from "node:child_process";
import { createPublicKey } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { KeyAlgorithm, Signer } from "../keys/types.js";
import { ManualClock } from "../util/clock.js";
import { GENESIS_PREV, checkpointPayload, keyIdOf, lineHash, type CheckpointFields } from "./format.js";
import { AuditLog } from "./log.js";
import { testSigner } from "./test-signer.js";
import { verifyAuditLog } from "./verify.js";

const signer = testSigner();
let dir: string;
let pristine: string[]; // the lines of a clean log: genesis, entries, a checkpoint after every 5 lines, close
let path: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fr-audit-verify-"));
  const file = join(dir, "pristine.log");
  const log = await AuditLog.open({ path: file, signer, clock: new ManualClock(), checkpointEvery: 5 });
  log.setHmacKey(new Uint8Array(32).fill(7));
  for (let i = 1; i <= 20; i++) {
    await log.log({
      type: "request",
      request: { id: `req-${i}`, operation: "read", path: `secret/data/${i}`, client_token: "t" },
    });
  }
  await log.close();
  pristine = (await readFile(file, "utf8")).trimEnd().split("\n");
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

let n = 0;
beforeEach(() => {
  path = join(dir, `case-${++n}.log`);
});

const obj = (line: string) => JSON.parse(line) as Record<string, unknown>;
const typeAt = (lineNo: number) => obj(pristine[lineNo - 1] as string).type;
const write = (ls: string[]) => writeFile(path, ls.map((l) => l + "\n").join(""));
const verify = (opts = {}) => verifyAuditLog(path, opts);

/** What an attacker with write access and a key of their own can do: fix up every prev and re-sign checkpoints. */
async function rechain(ls: string[], by: Signer, replaceGenesisKey: boolean): Promise<string[]> {
  const out: string[] = [];
  let prev = GENESIS_PREV;
  for (const l of ls) {
    const o = obj(l);
    o.prev = prev;
    if (o.type === "genesis" && replaceGenesisKey) {
      o.public_key = Buffer.from(by.publicKey).toString("base64");
      o.key_id = keyIdOf(by.publicKey);
    }
    if (o.type === "checkpoint") {
      const f = { ...o, algorithm: by.defaultScheme } as unknown as CheckpointFields;
      if (replaceGenesisKey) f.key_id = keyIdOf(by.publicKey);
      o.key_id = f.key_id;
      o.algorithm = f.algorithm;
      o.signature = Buffer.from(await by.sign(checkpointPayload(f))).toString("base64");
    }
    const text = JSON.stringify(o);
    out.push(text);
    prev = lineHash(text);
  }
  return out;
}

describe("verifyAuditLog on a clean log", () => {
  it("passes, counting entries and checkpoints, with the genesis key or a given key", async () => {
    await write(pristine);
    expect(typeAt(6)).toBe("checkpoint");
    const v = await verify();
    expect(v).toMatchObject({
      ok: true,
      lines: 26,
      entries: 20,
      checkpoints: 5,
      lastCheckpointSeq: 26,
      lastSeq: 26,
      keySource: "genesis",
    });
    expect(v.keyId).toBe(keyIdOf(signer.publicKey));
    expect(v.problem).toBeUndefined();
    expect(await verify({ publicKey: signer.publicKey, strict: true })).toMatchObject({
      ok: true,
      keySource: "option",
    });
  });

  it.each<KeyAlgorithm>(["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072"])(
    "verifies checkpoints signed with %s",
    async (alg) => {
      const s = testSigner(alg);
      const log = await AuditLog.open({ path, signer: s, clock: new ManualClock(), checkpointEvery: 2 });
      for (let i = 0; i < 3; i++) await log.log({ type: "event", event: { name: "e" } });
      await log.close();
      expect(await verify({ publicKey: s.publicKey, strict: true })).toMatchObject({
        ok: true,
        entries: 3,
        checkpoints: 3,
      });
    },
  );

  it("writes checkpoint signatures that openssl verifies over the documented byte string", async () => {
    const cp = obj(pristine[5] as string) as unknown as CheckpointFields & { signature: string };
    await writeFile(join(dir, "payload.bin"), checkpointPayload(cp));
    await writeFile(join(dir, "sig.der"), Buffer.from(cp.signature, "base64"));
    await writeFile(
      join(dir, "pub.pem"),
      createPublicKey({ key: Buffer.from(signer.publicKey), format: "der", type: "spki" }).export({
        type: "spki",
        format: "pem",
      }),
    );
    const out = execFileSync("openssl", [
      "dgst",
      "-sha256",
      "-verify",
      join(dir, "pub.pem"),
      "-signature",
      join(dir, "sig.der"),
      join(dir, "payload.bin"),
    ]);
    expect(out.toString()).toContain("Verified OK");
  });
});

describe("verifyAuditLog names the first tampered line", () => {
  it("edited entry: the line itself, kind edited", async () => {
    expect(typeAt(8)).toBe("request");
    const ls = [...pristine];
    ls[7] = (ls[7] as string).replace('"operation":"read"', '"operation":"delete"');
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 8, seq: 8, kind: "edited" });
  });

  it("edited prev or seq field: that line, kind edited", async () => {
    const ls = [...pristine];
    ls[8] = (ls[8] as string).replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${"ab".repeat(32)}"`);
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 9, kind: "edited" });
    const ls2 = [...pristine];
    ls2[8] = (ls2[8] as string).replace('"seq":9,', '"seq":90,');
    await write(ls2);
    expect((await verify()).problem).toMatchObject({ line: 9, seq: 90, kind: "edited" });
  });

  it("edited next-to-last entry: found through the last line", async () => {
    const ls = [...pristine];
    ls[24] = (ls[24] as string).replace("req-", "REQ-");
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 25, kind: "edited" });
  });

  it("removed entry: the line where it was, with its seq, kind removed", async () => {
    const ls = [...pristine];
    ls.splice(9, 1); // line 10
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 10, seq: 10, kind: "removed" });
  });

  it("removed run of entries and removed genesis", async () => {
    const ls = [...pristine];
    ls.splice(13, 3);
    await write(ls);
    const p = (await verify()).problem;
    expect(p).toMatchObject({ line: 14, seq: 14, kind: "removed" });
    expect(p?.message).toContain("14-16");
    await write(pristine.slice(1));
    expect((await verify()).problem).toMatchObject({ line: 1, seq: 1, kind: "removed" });
  });

  it("two lines swapped: the first out of order, kind reordered", async () => {
    const ls = [...pristine];
    [ls[14], ls[15]] = [ls[15] as string, ls[14] as string]; // lines 15 and 16
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 15, seq: 16, kind: "reordered" });
  });

  it("a line moved later: kind reordered", async () => {
    const ls = [...pristine];
    const [moved] = ls.splice(2, 1); // line 3 moved after line 6
    ls.splice(5, 0, moved as string);
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 3, seq: 4, kind: "reordered" });
  });

  it("inserted copy of an earlier line: kind inserted", async () => {
    const ls = [...pristine];
    ls.splice(11, 0, ls[3] as string); // becomes line 12
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 12, kind: "inserted" });
  });

  it("inserted copy of a later line: kind inserted", async () => {
    const ls = [...pristine];
    ls.splice(4, 0, ls[20] as string); // becomes line 5
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 5, kind: "inserted" });
  });

  it("inserted forged line with the next seq and a correct prev: kind inserted, that line", async () => {
    const ls = [...pristine];
    const forged = JSON.stringify({
      seq: 10,
      time: "2026-01-01T00:00:00.000Z",
      prev: lineHash(ls[8] as string),
      type: "event",
      event: { name: "fake" },
    });
    ls.splice(9, 0, forged); // becomes line 10
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 10, kind: "inserted" });
  });

  it("inserted forged lines with a made-up prev: kind inserted, that line", async () => {
    for (const seq of [10, 999]) {
      const ls = [...pristine];
      ls.splice(
        9,
        0,
        JSON.stringify({
          seq,
          time: "2026-01-01T00:00:00.000Z",
          prev: "cd".repeat(32),
          type: "event",
          event: { name: "fake" },
        }),
      );
      await write(ls);
      expect((await verify()).problem).toMatchObject({ line: 10, kind: "inserted" });
    }
  });

  it("a line inserted before the genesis line: line 1, kind inserted", async () => {
    await write([
      JSON.stringify({ seq: 1, time: "x", prev: "ef".repeat(32), type: "event", event: { name: "fake" } }),
      ...pristine,
    ]);
    expect((await verify()).problem).toMatchObject({ line: 1, kind: "inserted" });
  });

  it("an edited checkpoint signature or final checkpoint: kind bad-signature", async () => {
    const ls = [...pristine];
    const cp = obj(ls[11] as string);
    expect(cp.type).toBe("checkpoint");
    const sig = Buffer.from(cp.signature as string, "base64");
    sig.writeUInt8((sig.at(-1) ?? 0) ^ 1, sig.length - 1);
    cp.signature = sig.toString("base64");
    ls[11] = JSON.stringify(cp);
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 12, seq: 12, kind: "bad-signature" });

    const ls2 = [...pristine];
    ls2[25] = (ls2[25] as string).replace('"time":"', '"time":"1');
    await write(ls2);
    expect((await verify()).problem).toMatchObject({ line: 26, kind: "bad-signature" });
  });

  it("forged checkpoints fail: re-signed under the original key id, or under a new genesis key when the key is given", async () => {
    const attacker = testSigner();
    const edited = [...pristine];
    edited[7] = (edited[7] as string).replace('"operation":"read"', '"operation":"delete"');

    await write(await rechain(edited, attacker, false));
    expect((await verify()).problem).toMatchObject({ line: 6, kind: "bad-signature" });

    await write(await rechain(edited, attacker, true));
    // the file alone is self-consistent: only a key from outside the file tells the forgery apart
    expect(await verify()).toMatchObject({
      ok: true,
      keySource: "genesis",
      keyId: keyIdOf(attacker.publicKey),
    });
    const v = await verify({ publicKey: signer.publicKey });
    // the replaced genesis key is the first problem: it is not the key given
    expect(v).toMatchObject({ ok: false, keySource: "option", problem: { line: 1, kind: "bad-signature" } });
  });

  it("malformed lines and an empty file", async () => {
    const ls = [...pristine];
    ls[3] = "{not json";
    await write(ls);
    expect((await verify()).problem).toMatchObject({ line: 4, kind: "malformed" });
    await writeFile(path, "");
    expect(await verify()).toMatchObject({ ok: false, problem: { kind: "malformed" } });
    await expect(verifyAuditLog(join(dir, "nope.log"), {})).rejects.toMatchObject({ code: "FR_AUDIT_FILE" });
  });
});

describe("unsigned tail", () => {
  it("is information for a log still being written (or after a crash), and a failure when strict", async () => {
    await write(pristine.slice(0, 9)); // last checkpoint at line 6, lines 7-9 unsigned
    const v = await verify();
    expect(v).toMatchObject({ ok: true, entries: 7, unsignedTail: { line: 7, seq: 7, count: 3 } });
    expect(await verify({ strict: true })).toMatchObject({
      ok: false,
      problem: { line: 7, seq: 7, kind: "unsigned-tail" },
    });
  });

  it("is a failure when lines were appended after a clean close", async () => {
    await write(pristine);
    const extra = JSON.stringify({
      seq: 27,
      time: "2026-01-02T00:00:00.000Z",
      prev: lineHash(pristine[25] as string),
      type: "event",
      event: { name: "late" },
    });
    await appendFile(path, extra + "\n");
    expect(await verify()).toMatchObject({
      ok: false,
      problem: { line: 27, seq: 27, kind: "unsigned-tail" },
    });
  });
});
