/**
 * The TUF trusted root a device gets at enrollment: fetched from the server the device just enrolled
 * with, over the same TLS trust (the pinned server CA), and stored next to its identity. From then on the
 * TUF client workflow only follows signed root rotations from it (TUF 1.0 5.3), whatever a mirror serves.
 */
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { fail } from "../errors/index.js";
import { parseEnvelope } from "../updates/index.js";
import { writeFileAtomic } from "./atomic-write.js";

const MAX_ROOT_BYTES = 512 * 1024;

/** Where `agent enroll --updates-repo NAME` stores the repository's trusted root. */
export function trustedRootPath(outDir: string, repo: string): string {
  return path.join(outDir, "tuf", repo, "root.json");
}

/** Fetches version 1 of the repository's root from the enrollment server and checks it is root metadata. */
export async function fetchTrustedRoot(opts: {
  server: string;
  ca?: string | Buffer;
  repo: string;
}): Promise<Buffer> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(opts.repo)) {
    fail("FR_VALIDATION", `"${opts.repo}" is not a repository name (letters, digits, . _ -)`);
  }
  const url = new URL(`/v1/updates/${opts.repo}/metadata/1.root.json`, opts.server);
  const body = await get(url, opts.ca);
  parseEnvelope(body, "root"); // refuse anything that is not root metadata before trusting it
  return body;
}

/** Stores a fetched root atomically where `agent update --root` expects it; returns the path. */
export async function storeTrustedRoot(outDir: string, repo: string, body: Buffer): Promise<string> {
  const file = trustedRootPath(outDir, repo);
  await writeFileAtomic(file, body);
  return file;
}

function get(url: URL, ca: string | Buffer | undefined): Promise<Buffer> {
  const tls = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).get(
      url,
      { timeout: 15_000, agent: false, ...(tls && ca ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ROOT_BYTES) {
            req.destroy();
            reject(new Error(`${url.href}: the root metadata is larger than ${MAX_ROOT_BYTES} bytes`));
          } else chunks.push(c);
        });
        res.on("end", () => {
          if ((res.statusCode ?? 0) !== 200) {
            reject(
              new Error(`${url.href}: the server answered ${res.statusCode}; is the repository name right?`),
            );
          } else resolve(Buffer.concat(chunks));
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url.href}: timed out`)));
    req.on("error", (e) => reject(new Error(`${url.href}: ${e.message}`)));
  });
}
