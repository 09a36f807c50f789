import { afterAll, describe, expect, it } from "vitest";
import { isFleetError } from "../errors/index.js";
import { CsrVerifier } from "./csr-pool.js";
import { parseCsr, toPem } from "./index.js";
import { testKey } from "./test-helpers.js";

const p256 = () => testKey("ecdsa-p256").signer;
import { buildCsr } from "../pki/index.js";

async function until(v: CsrVerifier, pem: string): Promise<void> {
  // Threads start on first use; wait until a CSR is answered by one (the inline path answers at once).
  for (let i = 0; i < 200; i++) {
    await v.parseAndVerify(pem, 65536);
    if ((v as unknown as { slots?: unknown[] }).slots) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the CSR threads did not start");
}

describe("CsrVerifier", () => {
  const pool = new CsrVerifier({ threads: 1 });
  afterAll(() => pool.close());

  it("answers on a thread exactly what parseCsr answers inline, with Buffers", async () => {
    const der = await buildCsr([{ type: "CN", value: "d1.fleet.example" }], p256());
    const pem = toPem(der, "CERTIFICATE REQUEST");
    await until(pool, pem);
    const threaded = await pool.parseAndVerify(pem, 65536);
    const inline = parseCsr(pem);
    expect(Buffer.isBuffer(threaded.publicKey)).toBe(true);
    expect(threaded.publicKey.equals(inline.publicKey)).toBe(true);
    expect(threaded.der.equals(inline.der)).toBe(true);
    expect(threaded.subject.attributes).toEqual(inline.subject.attributes);
    expect(threaded.key).toEqual(inline.key);
    expect(threaded.san).toEqual(inline.san);
  });

  it("returns the same typed errors from a thread: bad signature, garbage, oversize", async () => {
    const der = Buffer.from(await buildCsr([{ type: "CN", value: "d2.fleet.example" }], p256()));
    await until(pool, toPem(der, "CERTIFICATE REQUEST"));
    der[der.length - 3] = (der[der.length - 3] as number) ^ 0xff;
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "none",
        (e: unknown) => (isFleetError(e) ? e.code : String(e)),
      );
    expect(await code(pool.parseAndVerify(toPem(der, "CERTIFICATE REQUEST"), 65536))).toMatch(/^FR_CSR_/);
    expect(await code(pool.parseAndVerify("not a csr", 65536))).toBe("FR_CSR_INVALID");
    expect(await code(pool.parseAndVerify(toPem(Buffer.alloc(3000, 1), "CERTIFICATE REQUEST"), 1024))).toBe(
      "FR_CSR_INVALID",
    );
  });

  it("with threads: 0, works on the calling thread", async () => {
    const v = new CsrVerifier({ threads: 0 });
    const pem = toPem(await buildCsr([{ type: "CN", value: "d3" }], p256()), "CERTIFICATE REQUEST");
    expect((await v.parseAndVerify(pem, 65536)).key).toEqual({ type: "ec", curve: "P-256" });
    await v.close();
  });
});
