/**
 * A CSR thread: parses and verifies certification requests (the CPU-heavy part of issuance: key import
 * and signature check) off the server's event loop. See csr-pool.ts.
 */
import { parentPort } from "node:worker_threads";
import { isFleetError } from "../errors/index.js";
import { parseCsr, verifyCsrSignature } from "./csr.js";

export interface CsrJob {
  id: number;
  input: Uint8Array | string;
  maxBytes: number;
}

export type CsrJobResult =
  | { id: number; csr: ReturnType<typeof parseCsr> }
  | { id: number; error: { code?: string; detail?: string; message: string } };

const port = parentPort!;
port.on("message", (job: CsrJob) => {
  try {
    const csr = parseCsr(job.input, { maxBytes: job.maxBytes });
    verifyCsrSignature(csr);
    port.postMessage({ id: job.id, csr } satisfies CsrJobResult);
  } catch (e) {
    const error = isFleetError(e)
      ? { code: e.code, ...(e.detail !== undefined ? { detail: e.detail } : {}), message: e.message }
      : { message: String((e as Error)?.message ?? e) };
    port.postMessage({ id: job.id, error } satisfies CsrJobResult);
  }
});
